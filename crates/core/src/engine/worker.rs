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

/// V8 keeps to about 1 MiB of it; the rest is for the recursive parser that finds the
/// trailing expression (see `wrap::MAX_TRANSFORM_BYTES`). Only touched pages cost memory.
pub(crate) const STACK_SIZE: usize = 512 * 1024 * 1024;

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

pub(crate) fn spawn(pool: &'static Pool, id: u64, memory_limit: usize) {
    let spawned = std::thread::Builder::new()
        .name(format!("enclave-engine-{id}"))
        .stack_size(STACK_SIZE)
        .spawn(move || main(pool, id, memory_limit));
    if spawned.is_err() {
        pool.worker_failed();
    }
}

fn main(pool: &'static Pool, id: u64, mut memory_limit: usize) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return pool.worker_failed();
    };
    // deno_core requires isolates to be created inside a runtime context.
    let _entered = rt.enter();
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    let mut engine = Engine::new(memory_limit);
    let mut prepared = Some(sandbox::prepare(&mut engine.host));
    pool.worker_started();

    loop {
        if prepared.is_none() {
            prepared = Some(sandbox::prepare(&mut engine.host));
        }
        engine.host.pump_platform_tasks();
        let mut job = match pool.worker_idle(id, memory_limit, &tx) {
            Some(job) => job,
            None => match rt.block_on(async { tokio::time::timeout(pool.idle_timeout(), rx.recv()).await }) {
                Ok(Some(job)) => job,
                Ok(None) => break,
                Err(_) => {
                    if pool.try_retire(id) {
                        break;
                    }
                    continue;
                }
            },
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
