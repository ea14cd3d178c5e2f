//! How a running script is stopped. Its own test binary: it counts the broker's kills,
//! which are process-wide, so no test from elsewhere may run beside it.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::*;
use enclave_broker_core::engine::pool_stats;
use enclave_broker_core::protocol::SessionLimits;
use enclave_broker_core::session::SessionState;

/// The kill count is process-wide: these tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// A script spinning in JavaScript never yields, so the stop must reach V8 from another
/// thread (the engine's reader thread, which takes the frame at once); the kill after the
/// grace period is only a fallback.
#[test]
fn spinning_scripts_stop_without_killing_their_process() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let killed_before = pool_stats().killed;

    let limits = SessionLimits { tool_timeout_ms: 300, ..Default::default() };
    let f = run_with(&TestHost::new(), limits, "while (true) {}");
    assert_eq!(f.error_code(), "TIMEOUT");

    let s = session(&TestHost::new(), SessionLimits::default());
    s.execute("for (;;) {}".into()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(s.state(), SessionState::Running);
    s.cancel(None);
    assert_eq!(wait(&s).error_code(), "SESSION_CANCELLED");

    // A tool reply that arrives while the script spins waits in the pipe, then the stop.
    let host = TestHost::new().tool("t", |_| ok("1"));
    let limits = SessionLimits { tool_timeout_ms: 300, ..Default::default() };
    let f = run_with(&host, limits, "callTool('t', {}); while (true) {}");
    assert_eq!(f.error_code(), "TIMEOUT");

    // A stop sent before the engine begins the script (it may arrive before the Execute
    // frame is handled) still stops it once it begins.
    for round in 0..20 {
        let sessions: Vec<_> = (0..16)
            .map(|_| {
                let s = session(&TestHost::new(), SessionLimits::default());
                s.execute("for (;;) {}".into()).unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(round % 8));
        for s in &sessions {
            s.cancel(None);
        }
        for s in &sessions {
            assert_eq!(wait(s).error_code(), "SESSION_CANCELLED");
        }
    }

    assert_eq!(pool_stats().killed, killed_before, "a spinning script needed a kill");
    assert_eq!(run("return 'next'").result.value_json.as_deref(), Some(r#""next""#));
}

/// Builtins that never look at V8's termination flag: the run ends at its timeout plus the
/// grace period, detached from its isolate, and the process (with any other executions it
/// runs) is not killed for it then; it is killed only if the builtin still holds its isolate
/// after `DETACHED_KILL_AFTER` (10 s, `engine/process.rs`).
///
/// `lastIndexOf` on 2^32 - 1 holes walks every index in C++ without looking at the
/// termination flag and without allocating (about 30 s here): it outlasts the grace period on
/// any machine and cannot end at a memory limit first (a builtin that allocates, like
/// `fill`, races the timeout against the heap limit).
#[test]
fn a_builtin_that_ignores_termination_is_detached_not_killed() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let before = pool_stats();
    let limits = SessionLimits { tool_timeout_ms: 200, ..Default::default() };
    let f = run_with(&TestHost::new(), limits, "new Array(2 ** 32 - 1).lastIndexOf(1); return 1");
    assert_eq!(f.error_code(), "TIMEOUT");
    let after = pool_stats();
    assert!(after.detached > before.detached, "{after:?}");
    assert_eq!(after.killed, before.killed, "{after:?}");
    // The isolate is held until the builtin returns or the last-resort kill, whichever comes
    // first (which one depends on the machine's speed); waiting for it here keeps a kill out
    // of the other test's count, and shows the busy isolate is let go in bounded time.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while pool_stats().running > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the detached run held its isolate: {:?}",
            pool_stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(run("return 'next'").result.value_json.as_deref(), Some(r#""next""#));
}
