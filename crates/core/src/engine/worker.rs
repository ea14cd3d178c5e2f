//! An engine thread: owns one isolate and a current-thread tokio runtime, runs one
//! execution at a time, and prepares the next context while idle so a new execution
//! starts without paying for context creation.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use deno_core::v8;
use tokio::sync::mpsc;

use super::isolate::IsolateHost;
use super::outcome::ExecutionOutcome;
use super::pool::{Job, Pool};
use super::{run, sandbox};
use crate::protocol::{ErrorCode, ErrorInfo};

/// Big enough that V8's own stack limit (about 1 MiB) is always hit first.
pub(crate) const STACK_SIZE: usize = 8 * 1024 * 1024;

struct Engine {
    // Declared first so it drops before the isolate it belongs to.
    graveyard: v8::UniqueRef<v8::MicrotaskQueue>,
    host: IsolateHost,
}

impl Engine {
    fn new(memory_limit: usize) -> Engine {
        let mut host = IsolateHost::new(memory_limit);
        let graveyard = v8::MicrotaskQueue::new(host.isolate(), v8::MicrotasksPolicy::Explicit);
        Engine { graveyard, host }
    }
}

pub(crate) fn spawn(pool: &'static Pool, id: u64, memory_limit: usize, first: Option<Job>) {
    // The job travels through a slot so it can be failed if the thread never starts.
    let slot = std::sync::Arc::new(std::sync::Mutex::new(first));
    let thread_slot = slot.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("enclave-engine-{id}"))
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let first = thread_slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            main(pool, id, memory_limit, first)
        });
    if spawned.is_err() {
        let orphan = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        pool.worker_failed(orphan);
    }
}

fn main(pool: &'static Pool, id: u64, mut memory_limit: usize, first: Option<Job>) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(_) => return pool.worker_failed(first),
    };
    // deno_core requires isolates to be created inside a runtime context.
    let _entered = rt.enter();
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    let mut engine = Engine::new(memory_limit);
    let mut next = first;
    let mut prepared = None;

    loop {
        let mut job = match next.take() {
            Some(job) => job,
            None => {
                if prepared.is_none() {
                    prepared = Some(sandbox::prepare(&mut engine.host));
                }
                engine.host.pump_platform_tasks();
                match pool.worker_idle(id, memory_limit, &tx) {
                    Some(job) => job,
                    None => {
                        let idle_for = pool.idle_timeout();
                        match rt.block_on(async { tokio::time::timeout(idle_for, rx.recv()).await }) {
                            Ok(Some(job)) => job,
                            Ok(None) => break,
                            Err(_) => {
                                if pool.try_retire(id) {
                                    break;
                                }
                                continue;
                            }
                        }
                    }
                }
            }
        };

        let wanted = job.request.sandbox.effective_memory_limit();
        if wanted != memory_limit {
            prepared = None;
            drop(engine);
            memory_limit = wanted;
            engine = Engine::new(memory_limit);
        }
        let context = match prepared.take() {
            Some(context) => context,
            None => sandbox::prepare(&mut engine.host),
        };
        let done = std::mem::replace(&mut job.request.done, Box::new(|_| {}));
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(run::execute(&mut engine.host, &engine.graveyard, context, job.request, job.control))
        }));
        let outcome = result.unwrap_or_else(|_| {
            engine.host.taint();
            ExecutionOutcome::Threw(ErrorInfo::new(ErrorCode::EXECUTION_ERROR, "Internal engine error"))
        });
        done(outcome);
        if engine.host.is_tainted() {
            drop(engine);
            engine = Engine::new(memory_limit);
        }
    }
    // Retired by the pool (already uncounted). The context goes before its isolate.
    drop(prepared);
    drop(engine);
}

pub(crate) fn default_idle_timeout() -> Duration {
    Duration::from_secs(30)
}

pub(crate) type JobSender = mpsc::UnboundedSender<Job>;
