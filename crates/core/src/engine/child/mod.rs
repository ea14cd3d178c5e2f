//! The engine process (`enclave-engine`): one V8 isolate hosted by deno_core, one
//! execution at a time, each in a fresh context prepared while idle. It talks to the
//! broker over stdin/stdout frames. A process whose isolate hit a limit exits; the broker
//! starts a fresh one.

mod bounded;
mod buffer_budget;
mod icu_memory;
#[cfg(target_os = "linux")]
mod interrupts;
mod isolate;
mod limit_hit;
mod link;
mod lockdown;
mod natives;
mod platform;
#[cfg(not(target_os = "linux"))]
mod reader_thread;
mod run;
mod sandbox;
pub mod wrap;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use deno_core::v8;
use tokio::sync::mpsc;

use self::isolate::IsolateHost;
use self::link::{Link, RemoteBridge};
use self::run::RunRequest;
use super::SandboxOptions;
use super::confine;
use super::control::ExecutionControl;
use super::outcome::ExecutionOutcome;
use super::wire::{FromEngine, ToEngine};
use crate::protocol::{ErrorCode, ErrorInfo};

/// V8 keeps to about 1 MiB of it; the rest is for the recursive parser that finds the
/// trailing expression (see `wrap::MAX_TRANSFORM_BYTES`). Only touched pages cost memory.
pub(crate) const STACK_SIZE: usize = 512 * 1024 * 1024;

struct Engine {
    // Declared first so it drops before the isolate it belongs to.
    graveyard: v8::UniqueRef<v8::MicrotaskQueue>,
    host: IsolateHost,
}

impl Engine {
    fn new(memory_limit: usize, link: &Arc<Link>) -> Engine {
        let link = link.clone();
        let mut host = IsolateHost::new(memory_limit, Box::new(move |report| link.limit_reached(report)));
        let graveyard = v8::MicrotaskQueue::new(host.isolate(), v8::MicrotasksPolicy::Explicit);
        Engine { graveyard, host }
    }
}

struct Job {
    exec: u64,
    code: String,
    sandbox: SandboxOptions,
}

/// Entry point of the engine binary. `memory_limit` sizes the first isolate.
pub fn main(memory_limit: usize) -> ! {
    // While the process has one thread: capabilities and signal masks are per thread.
    let layers = confine::enter_process();
    icu_memory::install();
    #[cfg(target_os = "linux")]
    interrupts::block();
    platform::ensure_initialized();
    let link = Link::to_stdout();
    #[cfg(target_os = "linux")]
    interrupts::listen(link.clone());
    let engine = std::thread::Builder::new()
        .name("enclave-engine".into())
        .stack_size(STACK_SIZE)
        .spawn(move || engine_loop(&link, memory_limit, layers))
        .expect("failed to start the engine thread");
    let _ = engine.join();
    std::process::exit(0)
}

#[cfg(target_os = "linux")]
async fn read_frame(
    input: &mut tokio::io::BufReader<tokio::net::unix::pipe::Receiver>,
) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let len = input.read_u32_le().await? as usize;
    if len > super::wire::MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"));
    }
    let mut frame = vec![0u8; len];
    input.read_exact(&mut frame).await?;
    Ok(frame)
}

/// Runs on the engine thread's runtime, so a tool reply wakes no other thread. It runs
/// whenever the engine waits (between executions, and at every await of a script).
/// Elsewhere than on Linux a thread reads the pipe instead (`reader_thread`).
#[cfg(target_os = "linux")]
async fn read_loop(link: Arc<Link>, jobs: mpsc::UnboundedSender<Job>) {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: fd 0 is the pipe from the broker; nothing else in this process uses it.
    let stdin = unsafe { OwnedFd::from_raw_fd(0) };
    let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(stdin) else { std::process::exit(0) };
    let mut input = tokio::io::BufReader::with_capacity(64 * 1024, pipe);
    loop {
        match read_frame(&mut input).await.and_then(|frame| ToEngine::decode(&frame)) {
            Ok(message) => dispatch(&link, &jobs, message),
            // The broker closed the pipe (or went away): this process is done.
            Err(_) => std::process::exit(0),
        }
    }
}

/// Acts on one frame from the broker.
fn dispatch(link: &Link, jobs: &mpsc::UnboundedSender<Job>, message: ToEngine) {
    match message {
        ToEngine::Execute { exec, code, memory_limit, max_result_bytes, max_depth, globals_json } => {
            let sandbox = SandboxOptions {
                memory_limit_bytes: memory_limit as usize,
                max_result_bytes: max_result_bytes as usize,
                max_depth,
                globals_json,
            };
            if jobs.send(Job { exec, code, sandbox }).is_err() {
                std::process::exit(0);
            }
        }
        ToEngine::ToolResult { exec, index, reply } => link.deliver(exec, index, reply),
        ToEngine::Interrupt { exec, reason } => link.interrupt(exec, reason),
    }
}

fn engine_loop(link: &Arc<Link>, mut memory_limit: usize, layers: Vec<String>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    // deno_core requires isolates to be created inside a runtime context.
    let _entered = rt.enter();
    let (jobs, mut queue) = mpsc::unbounded_channel();
    #[cfg(target_os = "linux")]
    rt.spawn(read_loop(link.clone(), jobs));
    #[cfg(not(target_os = "linux"))]
    reader_thread::start(link.clone(), jobs);
    let mut engine = Engine::new(memory_limit, link);
    // Once, before the process is pooled: nothing an execution does changes it.
    let layers = lockdown::lock_down(&mut engine.host, memory_limit, layers);
    link.send(&FromEngine::Confined { layers });
    loop {
        let mut prepared = Some(sandbox::prepare(&mut engine.host));
        engine.host.pump_platform_tasks();
        link.send(&FromEngine::Ready);
        let Some(job) = rt.block_on(queue.recv()) else { return };

        let wanted = job.sandbox.effective_memory_limit();
        if wanted != memory_limit {
            prepared = None;
            drop(engine);
            memory_limit = wanted;
            engine = Engine::new(memory_limit, link);
        }
        let context = prepared.take().unwrap_or_else(|| sandbox::prepare(&mut engine.host));
        let control = Arc::new(ExecutionControl::new());
        link.begin(job.exec, control.clone());
        let request = RunRequest {
            code: job.code,
            sandbox: job.sandbox,
            bridge: Arc::new(RemoteBridge::new(job.exec, link.clone())),
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(run::execute(&mut engine.host, &engine.graveyard, context, request, control))
        }));
        link.end(job.exec);
        let outcome = result.unwrap_or_else(|_| {
            engine.host.taint();
            ExecutionOutcome::Threw(ErrorInfo::new(ErrorCode::EXECUTION_ERROR, "Internal engine error"))
        });
        let tainted = engine.host.is_tainted();
        link.send(&FromEngine::Outcome { exec: job.exec, outcome, tainted });
        if tainted {
            // A fresh process is cheaper to trust than an isolate that hit a limit.
            return;
        }
    }
}
