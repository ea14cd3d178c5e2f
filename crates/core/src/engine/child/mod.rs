//! The engine process (`enclave-engine`): several V8 isolates hosted by deno_core, each on
//! a thread of its own running one execution at a time, in a fresh context (`isolates`).
//! The process's main thread reads the broker's frames (`read_loop`) and acts on each at
//! once: a tool reply wakes the one isolate thread that awaits it, a stop terminates the
//! named execution even while its script spins, and the end of the pipe (the broker went
//! away) ends the process.

mod bounded;
mod buffer_budget;
mod icu_memory;
mod isolate;
mod isolates;
mod limit_hit;
mod link;
mod lockdown;
mod natives;
mod platform;
mod run;
mod sandbox;
pub mod wrap;

use std::io::BufReader;
use std::sync::Arc;

use self::isolates::{Isolates, Job};
use self::link::Link;
use super::SandboxOptions;
use super::confine;
use super::control::ExecutionControl;
use super::wire::{ToEngine, read_frame};

/// The stack of the thread that reads frames, which also turns each script into a function
/// body (`wrap`): oxc's recursive parser needs this much for the largest script it parses
/// (see `wrap::MAX_TRANSFORM_BYTES`). Only touched pages cost memory.
pub(crate) const STACK_SIZE: usize = 512 * 1024 * 1024;

/// glibc's malloc arenas for the whole process. Left to itself glibc gives each isolate
/// thread an arena of its own (up to 8 per core), and each keeps the memory V8's parser and
/// compiler freed in it: with 1,000 executions waiting on tools (63 processes of 16
/// isolates) two arenas per process held 67 MiB PSS less than the default. V8 mallocs in
/// large zone segments, so the threads seldom meet on an arena's lock.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Entry point of the engine binary: isolates of `memory_limit`, at most `capacity` of them
/// running at once.
pub fn main(memory_limit: usize, capacity: usize) -> ! {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's settings; called before any other thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
    // While the process has one thread: capabilities are per thread.
    let layers = confine::enter_process();
    icu_memory::install();
    platform::ensure_initialized();
    let link = Link::to_stdout();
    // The first isolate locks the process down (`lockdown`) before it reports ready.
    let isolates = Isolates::start(link.clone(), memory_limit, capacity.max(1), layers);
    let reader = std::thread::Builder::new()
        .name("enclave-engine-input".into())
        .stack_size(STACK_SIZE)
        .spawn(move || read_loop(&link, &isolates));
    if let Ok(reader) = reader {
        let _ = reader.join();
    }
    std::process::exit(0)
}

/// Reads and acts on the broker's frames until the pipe ends, which ends the process.
fn read_loop(link: &Arc<Link>, isolates: &Arc<Isolates>) {
    let mut input = BufReader::with_capacity(64 * 1024, std::io::stdin().lock());
    while let Ok(message) = read_frame(&mut input).and_then(|frame| ToEngine::decode(&frame)) {
        match message {
            ToEngine::Execute { exec, code, memory_limit, max_result_bytes, max_depth, globals_json } => {
                let control = Arc::new(ExecutionControl::new());
                link.begin(exec, control.clone());
                let sandbox = SandboxOptions {
                    memory_limit_bytes: memory_limit as usize,
                    max_result_bytes: max_result_bytes as usize,
                    max_depth,
                    globals_json,
                };
                let wrapped = wrap::wrap(&code);
                isolates.run(Job { exec, code, wrapped, sandbox, control });
            }
            ToEngine::ToolResult { exec, index, reply } => link.deliver(exec, index, reply),
            ToEngine::Interrupt { exec, reason } => {
                if !isolates.stop_waiting(exec, reason) {
                    link.interrupt(exec, reason);
                }
            }
        }
    }
}
