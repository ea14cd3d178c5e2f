//! One thread that runs actions at given instants: script timeouts (a spinning script
//! never yields, so its stop must come from outside) and the kill that follows a stop
//! an engine process does not honour in time.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

type Action = Box<dyn FnOnce() + Send>;

struct State {
    entries: BTreeMap<(Instant, u64), Action>,
    next_id: u64,
}

struct Timers {
    state: Mutex<State>,
    changed: Condvar,
}

fn timers() -> &'static Timers {
    static TIMERS: OnceLock<&'static Timers> = OnceLock::new();
    TIMERS.get_or_init(|| {
        let timers: &'static Timers = Box::leak(Box::new(Timers {
            state: Mutex::new(State { entries: BTreeMap::new(), next_id: 0 }),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("enclave-broker-timers".into())
            .spawn(move || timers.run())
            .expect("failed to start the timer thread");
        timers
    })
}

impl Timers {
    fn run(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(entry) = state.entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            if !due.is_empty() {
                // Actions run unlocked: they may arm or disarm timers themselves.
                drop(state);
                for action in due {
                    action();
                }
                state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state = match state.entries.keys().next() {
                Some(&(at, _)) => {
                    self.changed
                        .wait_timeout(state, at.saturating_duration_since(now))
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.changed.wait(state).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }
}

/// An armed timer; dropping it disarms it.
pub(crate) struct Ticket {
    key: (Instant, u64),
}

pub(crate) fn arm(at: Instant, action: impl FnOnce() + Send + 'static) -> Ticket {
    let timers = timers();
    let mut state = timers.state.lock().unwrap_or_else(|p| p.into_inner());
    state.next_id += 1;
    let key = (at, state.next_id);
    let first = state.entries.keys().next().is_none_or(|current| key < *current);
    state.entries.insert(key, Box::new(action));
    if first {
        timers.changed.notify_one();
    }
    Ticket { key }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let timers = timers();
        timers.state.lock().unwrap_or_else(|p| p.into_inner()).entries.remove(&self.key);
    }
}
