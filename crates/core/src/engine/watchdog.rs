//! One thread that enforces script timeouts. Synchronous code (`while(true){}`) never
//! yields to its engine thread, so the stop has to come from outside: the watchdog calls
//! `terminate_execution` through the execution's control.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::control::ExecutionControl;
use super::outcome::InterruptReason;

struct State {
    entries: BTreeMap<(Instant, u64), Arc<ExecutionControl>>,
    next_id: u64,
}

struct Watchdog {
    state: Mutex<State>,
    changed: Condvar,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let w: &'static Watchdog = Box::leak(Box::new(Watchdog {
            state: Mutex::new(State { entries: BTreeMap::new(), next_id: 0 }),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("enclave-broker-watchdog".into())
            .spawn(move || w.run())
            .expect("failed to start the watchdog thread");
        w
    })
}

impl Watchdog {
    fn run(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            while let Some(entry) = state.entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                entry.remove().interrupt(InterruptReason::Timeout);
            }
            state = match state.entries.keys().next() {
                Some(&(due, _)) => {
                    self.changed
                        .wait_timeout(state, due.saturating_duration_since(now))
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.changed.wait(state).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }
}

/// A armed timeout; dropping it disarms it.
pub struct Ticket {
    key: (Instant, u64),
}

pub fn arm(due: Instant, control: Arc<ExecutionControl>) -> Ticket {
    let w = watchdog();
    let mut state = w.state.lock().unwrap_or_else(|p| p.into_inner());
    state.next_id += 1;
    let key = (due, state.next_id);
    let is_first = state.entries.keys().next().is_none_or(|first| key < *first);
    state.entries.insert(key, control);
    if is_first {
        w.changed.notify_one();
    }
    Ticket { key }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let w = watchdog();
        w.state.lock().unwrap_or_else(|p| p.into_inner()).entries.remove(&self.key);
    }
}
