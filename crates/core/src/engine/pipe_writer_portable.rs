//! The broker's end of the pipe into an engine process where the pipe cannot be made
//! non-blocking (Windows). A write must still never wait for the engine (see
//! `pipe_writer.rs`: the engine reads only when its script yields), so frames go, in order,
//! to a thread of this process's own that writes them with blocking writes. It ends, and the
//! pipe closes, when the process's writer is dropped.

use std::io::{self, Write};
use std::process::ChildStdin;
use std::sync::Arc;
use std::sync::mpsc;

pub(crate) struct PipeWriter {
    frames: mpsc::Sender<Vec<u8>>,
}

impl PipeWriter {
    pub fn new(mut pipe: ChildStdin) -> io::Result<Arc<PipeWriter>> {
        let (frames, queue) = mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new().name("enclave-engine-writer".into()).spawn(move || {
            for frame in queue {
                // A pipe whose reader is gone drops frames: the process's reader settles what it ran.
                if pipe.write_all(&frame).is_err() {
                    return;
                }
            }
        })?;
        Ok(Arc::new(PipeWriter { frames }))
    }

    /// Queues `frame` after everything sent before it. Never blocks on the engine.
    pub fn send(self: &Arc<Self>, frame: &[u8]) {
        let _ = self.frames.send(frame.to_vec());
    }
}
