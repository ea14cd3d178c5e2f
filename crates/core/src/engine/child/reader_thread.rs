//! How the engine process hears the broker where the Linux path is not available (there the
//! engine thread reads its own pipe, and a stop also comes as a real-time signal: see
//! `interrupts`). Here a thread reads the pipe with blocking reads and acts on each frame at
//! once: an Interrupt frame stops a script that spins without any signal, and a tool reply
//! costs one more thread wake-up than on Linux. The end of the pipe (the broker went away)
//! ends the process from this thread, even while a script spins.

use std::io::BufReader;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::link::Link;
use super::{Job, dispatch};
use crate::engine::wire::{ToEngine, read_frame};

pub(super) fn start(link: Arc<Link>, jobs: mpsc::UnboundedSender<Job>) {
    let spawned = std::thread::Builder::new().name("enclave-engine-input".into()).spawn(move || {
        let mut input = BufReader::with_capacity(64 * 1024, std::io::stdin().lock());
        loop {
            match read_frame(&mut input).and_then(|frame| ToEngine::decode(&frame)) {
                Ok(message) => dispatch(&link, &jobs, message),
                Err(_) => std::process::exit(0),
            }
        }
    });
    if spawned.is_err() {
        // Nothing could ever reach this process.
        std::process::exit(0);
    }
}
