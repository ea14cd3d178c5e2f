//! The engine end to end, without Node: scripts, results, errors, tool calls, limits.

mod common;

use std::time::{Duration, Instant};

use common::*;
use enclave_broker_core::protocol::SessionLimits;
use enclave_broker_core::session::SessionState;
use enclave_broker_core::tools::ToolReply;

#[test]
fn returns_values_and_trailing_expressions() {
    assert_eq!(run("return 1 + 2").result.value_json.as_deref(), Some("3"));
    assert_eq!(run("const x = 5; x + 3").result.value_json.as_deref(), Some("8"));
    assert_eq!(run("const x = 1;").result.value_json, None);
    assert_eq!(run("").result.value_json, None);
    let f = run("return { a: [1, { b: 'x' }], n: null, u: undefined, d: 1.5 }");
    assert_eq!(f.result.value_json.as_deref(), Some(r#"{"a":[1,{"b":"x"}],"n":null,"d":1.5}"#));
    assert_eq!(f.types(), vec!["session_init", "final"]);
    assert_eq!(f.result.final_state, SessionState::Completed);
}

#[test]
fn ordinary_javascript_works() {
    let code = r#"
        class A { constructor(x) { this.x = x } get double() { return this.x * 2 } }
        function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }
        const m = new Map([['a', 1]]); let i = 0; while (i < 10) i++;
        const re = /(\d+)-(\d+)/.exec('12-34');
        try { throw new Error('inner') } catch (e) { var caught = e.message }
        return [new A(21).double, fib(10), m.get('a'), i, re[2], caught, typeof Deno, typeof require, typeof process]
    "#;
    assert_eq!(
        run(code).result.value_json.as_deref(),
        Some(r#"[42,55,1,10,"34","inner","undefined","undefined","undefined"]"#)
    );
}

#[test]
fn converts_special_values_like_the_original() {
    let f = run("return [10n, NaN, new Map([['k', new Set([1,2])]]), new Date(0), /a/g, new Error('e')]");
    assert_eq!(
        f.result.value_json.as_deref(),
        Some(r#"["10",null,{"k":[1,2]},"1970-01-01T00:00:00.000Z","/a/g",{"name":"Error","message":"e"}]"#)
    );
    let f = run("const o = {a: 1}; o.self = o; return o");
    assert_eq!(f.result.value_json.as_deref(), Some(r#"{"a":1,"self":"[Circular]"}"#));
    let f = run("return { f() {} }");
    assert_eq!(f.error_code(), "EXECUTION_ERROR");
    assert!(f.error_message().starts_with("Return value contains a function."));
}

#[test]
fn syntax_errors_are_validation_errors_with_positions() {
    let f = run("return (");
    assert_eq!(f.error_code(), "VALIDATION_ERROR");
    assert_eq!(f.result.error.as_ref().unwrap().name, "SyntaxError");
    assert!(f.error_message().starts_with("Failed to parse AgentScript code: "), "{}", f.error_message());
    assert_eq!(f.types(), vec!["session_init", "final"]);
    let f = run("}); globalThis.x = 1; (async function () {");
    assert_eq!(f.error_code(), "VALIDATION_ERROR");
}

#[test]
fn uncaught_throws_are_execution_errors() {
    let f = run("throw new TypeError('bad thing')");
    assert_eq!(f.error_code(), "EXECUTION_ERROR");
    assert_eq!(f.result.error.as_ref().unwrap().name, "TypeError");
    assert_eq!(f.error_message(), "bad thing");
    assert_eq!(run("throw 'just a string'").error_message(), "just a string");
    assert_eq!(run("throw { message: 'obj thrown', code: 'X' }").error_message(), "obj thrown");
    assert_eq!(
        run("const o = null; return o.x;").error_message(),
        "Cannot read properties of null (reading 'x')"
    );
    assert_eq!(run("throw { message: 'x', code: 'TIMEOUT' }").error_code(), "EXECUTION_ERROR");
}

#[test]
fn a_tool_call_emits_the_originals_event_sequence() {
    let host = TestHost::new().tool("add", |args| {
        let v: serde_json::Value = serde_json::from_str(args).unwrap();
        ok(&(v["a"].as_i64().unwrap() + v["b"].as_i64().unwrap()).to_string())
    });
    let f = run_with(
        &host,
        SessionLimits::default(),
        "console.log('hi', 42); const x = await callTool('add', {a: 1, b: 2}); return {x}",
    );
    assert_eq!(f.result.value_json.as_deref(), Some(r#"{"x":3}"#));
    assert_eq!(
        f.types(),
        vec![
            "session_init",
            "stdout",
            "tool_call",
            "tool_progress",
            "tool_progress",
            "tool_result_applied",
            "final"
        ]
    );
    assert_eq!(f.events[1].payload_json(), r#"{"chunk":"hi 42\n"}"#);
    let call: serde_json::Value = serde_json::from_str(f.events[2].payload_json()).unwrap();
    assert!(call["callId"].as_str().unwrap().starts_with("c_"));
    assert_eq!(call["toolName"], "add");
    assert_eq!(call["args"], serde_json::json!({"a": 1, "b": 2}));
    for (i, e) in f.events.iter().enumerate() {
        assert_eq!(e.seq(), i as u64 + 1);
    }
    let fin = f.final_payload();
    assert_eq!(fin["stats"]["toolCallCount"], 1);
    assert_eq!(fin["stats"]["stdoutBytes"], 6);
}

#[test]
fn tool_errors_reach_the_script_with_their_code() {
    let host = TestHost::new().tool("fail", |_| {
        Some(ToolReply::Err(enclave_broker_core::protocol::ErrorInfo::new("E_FAIL", "tool exploded")))
    });
    let f = run_with(
        &host,
        SessionLimits::default(),
        "try { await callTool('fail', {}) } catch (e) { return [e.message, e.code, e instanceof Error] }",
    );
    assert_eq!(f.result.value_json.as_deref(), Some(r#"["tool exploded","E_FAIL",true]"#));
    let f = run_with(&host, SessionLimits::default(), "await callTool('fail', {})");
    assert_eq!(f.error_code(), "E_FAIL");
    assert_eq!(f.error_message(), "tool exploded");
    let f = run_with(&host, SessionLimits::default(), "await callTool('nope', {})");
    assert_eq!(f.error_code(), "UNKNOWN_TOOL");
    assert_eq!(f.error_message(), "Unknown tool: nope");
}

#[test]
fn bad_tool_arguments_are_rejected_in_the_sandbox() {
    let f = run("try { await callTool('x', [1]) } catch (e) { return e.message }");
    assert_eq!(f.result.value_json.as_deref(), Some(r#""Tool arguments must be an object""#));
    let f = run("const a = {}; a.a = a; try { await callTool('x', a) } catch (e) { return e.message }");
    assert_eq!(f.result.value_json.as_deref(), Some(r#""Tool arguments must be JSON-serializable""#));
    assert_eq!(f.types(), vec!["session_init", "final"]);
}

#[test]
fn parallel_runs_calls_concurrently() {
    let host = TestHost::new().tool("echo", ok);
    let f = run_with(
        &host,
        SessionLimits::default(),
        "return await parallel([1, 2, 3], (n) => callTool('echo', {n}))",
    );
    assert_eq!(f.result.value_json.as_deref(), Some(r#"[{"n":1},{"n":2},{"n":3}]"#));
    let f = run("try { await parallel(new Array(101).fill(0), (x) => x) } catch (e) { return e.message }");
    assert_eq!(f.result.value_json.as_deref(), Some(r#""parallel() is limited to 100 items""#));
}

#[test]
fn max_tool_calls_stops_the_next_call() {
    let host = TestHost::new().tool("add", |_| ok("1"));
    let limits = SessionLimits { max_tool_calls: 2, ..Default::default() };
    let f = run_with(&host, limits, "for (let i = 0; i < 5; i++) await callTool('add', {}); return 1");
    assert_eq!(f.error_code(), "MAX_TOOL_CALLS_EXCEEDED");
    assert_eq!(
        f.error_message(),
        "Maximum tool call limit exceeded (2). This limit prevents runaway script execution."
    );
    assert_eq!(f.types().iter().filter(|t| **t == "tool_call").count(), 2);
}

#[test]
fn script_timeout_stops_synchronous_loops() {
    for code in [
        "while (true) {}",
        "for (;;) {}",
        "await new Promise(() => {})",
        "/(a+)+$/.test('a'.repeat(40) + 'b')",
    ] {
        let start = Instant::now();
        let limits = SessionLimits { tool_timeout_ms: 200, ..Default::default() };
        let f = run_with(&TestHost::new(), limits, code);
        assert_eq!(f.error_code(), "TIMEOUT", "{code}");
        assert_eq!(f.error_message(), "Script execution timed out after 200ms");
        assert!(start.elapsed() < Duration::from_millis(1500), "{code} took {:?}", start.elapsed());
    }
    // The engine is still usable afterwards.
    assert_eq!(run("return 7").result.value_json.as_deref(), Some("7"));
}

#[test]
fn cancel_stops_a_script_waiting_on_a_tool_that_never_replies() {
    let host = TestHost::new().tool("hang", |_| None);
    let s = session(&host, SessionLimits::default());
    s.execute("await callTool('hang', {}); return 1".into()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(s.state(), SessionState::Running);
    s.cancel(Some("stop"));
    let f = wait(&s);
    assert_eq!(f.error_code(), "SESSION_CANCELLED");
    assert_eq!(f.error_message(), "Session was cancelled");
    assert_eq!(f.result.final_state, SessionState::Cancelled);
    assert_eq!(
        f.types(),
        vec!["session_init", "tool_call", "tool_progress", "tool_progress", "tool_result_applied", "final"]
    );
    assert!(!host.aborted.lock().unwrap().is_empty());
}

#[test]
fn cancel_stops_a_spinning_script() {
    let s = session(&TestHost::new(), SessionLimits::default());
    s.execute("while (true) {}".into()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    s.cancel(None);
    let f = wait(&s);
    assert_eq!(f.error_code(), "SESSION_CANCELLED");
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn deadline_ends_the_run_with_deadline_exceeded() {
    let host = TestHost::new().tool("hang", |_| None);
    let limits = SessionLimits { deadline_ms: 150, ..Default::default() };
    let s = session(&host, limits);
    s.execute("await callTool('hang', {})".into()).unwrap();
    let f = wait(&s);
    assert_eq!(f.error_code(), "DEADLINE_EXCEEDED");
    assert_eq!(f.error_message(), "Deadline exceeded");
    assert_eq!(f.result.final_state, SessionState::Failed);
    assert_eq!(s.state(), SessionState::Cancelled);
    let types = f.types();
    assert_eq!(&types[types.len() - 2..], &["deadline_exceeded", "final"]);
}

#[test]
fn memory_limit_ends_the_script_not_the_process() {
    let s = enclave_broker_core::engine::SandboxOptions {
        memory_limit_bytes: 32 * 1024 * 1024,
        ..Default::default()
    };
    use_test_engine();
    let session = enclave_broker_core::session::Session::new(
        enclave_broker_core::session::SessionConfig { sandbox: s, ..Default::default() },
        TestHost::new(),
    );
    session.execute("const a = []; while (true) a.push({ x: 'y'.repeat(100) + a.length })".into()).unwrap();
    let f = wait(&session);
    assert_eq!(f.error_code(), "MEMORY_LIMIT_EXCEEDED");
    assert!(f.error_message().starts_with("Memory limit exceeded: "), "{}", f.error_message());
    assert_eq!(run("return 'alive'").result.value_json.as_deref(), Some(r#""alive""#));
}

#[test]
fn stack_overflow_is_an_ordinary_error() {
    let f = run("function f() { return f() } try { f() } catch (e) { return e instanceof RangeError }");
    assert_eq!(f.result.value_json.as_deref(), Some("true"));
}

#[test]
fn the_sandbox_has_no_host_surface() {
    let f = run(
        "return [typeof Deno, typeof __bootstrap, typeof WebAssembly, typeof SharedArrayBuffer, typeof Atomics, \
         typeof require, typeof process, typeof setTimeout]",
    );
    assert_eq!(
        f.result.value_json.as_deref(),
        Some(
            r#"["undefined","undefined","undefined","undefined","undefined","undefined","undefined","undefined"]"#
        )
    );
    let f = run("try { eval('1') } catch (e) { return e.constructor.name }");
    assert_eq!(f.result.value_json.as_deref(), Some(r#""EvalError""#));
    let f = run("try { await import('fs') } catch (e) { return e.message }");
    assert_eq!(f.result.value_json.as_deref(), Some(r#""import() is not available in the sandbox""#));
}

#[test]
fn custom_globals_are_frozen_copies() {
    let sandbox = enclave_broker_core::engine::SandboxOptions {
        globals_json: Some(r#"{"ctx":{"userId":"u1","tags":["a"]}}"#.into()),
        ..Default::default()
    };
    use_test_engine();
    let s = enclave_broker_core::session::Session::new(
        enclave_broker_core::session::SessionConfig { sandbox, ..Default::default() },
        TestHost::new(),
    );
    s.execute(
        "'use strict'; try { ctx.userId = 'x' } catch {} return [ctx.userId, Object.isFrozen(ctx.tags)]"
            .into(),
    )
    .unwrap();
    assert_eq!(wait(&s).result.value_json.as_deref(), Some(r#"["u1",true]"#));
}

#[test]
fn per_tool_deadline_abandons_the_call_and_aborts_its_signal() {
    let host = TestHost::new().tool("hang", |_| None);
    let limits = SessionLimits { per_tool_deadline_ms: 100, ..Default::default() };
    let f = run_with(
        &host,
        limits,
        "try { await callTool('hang', {}) } catch (e) { return [e.code, e.message] }",
    );
    assert_eq!(
        f.result.value_json.as_deref(),
        Some(r#"["DEADLINE_EXCEEDED","Tool call exceeded perToolDeadlineMs (100ms)"]"#)
    );
    assert_eq!(host.aborted.lock().unwrap().len(), 1);
    let types = f.types();
    assert_eq!(types.iter().filter(|t| **t == "tool_result_applied").count(), 1);
}

#[test]
fn external_tools_wait_for_a_submitted_result() {
    use enclave_broker_core::session::{ExternalTools, Session, SessionConfig, SubmitError};
    use_test_engine();
    let s = Session::new(
        SessionConfig { external_tools: ExternalTools::All, ..Default::default() },
        TestHost::new(),
    );
    assert_eq!(
        s.submit_tool_result("c_x", ToolReply::Ok(None)),
        Err(SubmitError::WrongState(SessionState::Starting))
    );
    s.execute("const r = await callTool('client:ask', {q: 1}); return r.answer * 2".into()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let call_id = loop {
        if let Some(id) = s.waiting_call_ids().into_iter().next() {
            break id;
        }
        assert!(Instant::now() < deadline, "the call never started");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(s.state(), SessionState::WaitingForTool);
    let err = s.submit_tool_result("c_wrong", ToolReply::Ok(None)).unwrap_err();
    assert_eq!(err.to_string(), format!("Tool result callId mismatch: expected {call_id}, got c_wrong"));
    s.submit_tool_result(&call_id, ToolReply::Ok(Some(r#"{"answer":21}"#.into()))).unwrap();
    let f = wait(&s);
    assert_eq!(f.result.value_json.as_deref(), Some("42"));
    assert_eq!(
        s.submit_tool_result(&call_id, ToolReply::Ok(None)).unwrap_err().to_string(),
        "Cannot submit tool result in state: completed"
    );
}

#[test]
fn a_v8_fatal_error_ends_only_the_executions_of_its_own_process() {
    let mut spinning = Vec::new();
    let host = TestHost::new().tool("hang", |_| None);
    for _ in 0..2 {
        let s = session(&host, SessionLimits::default());
        s.execute("let n = 0; for (let i = 0; i < 3e7; i++) n += i; return n".into()).unwrap();
        spinning.push(s);
    }
    // Two executions waiting on a tool, then the crash, all in one process (a memory limit
    // of their own: no other test's executions share it).
    let before = enclave_broker_core::engine::pool_stats();
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let s = session_with_memory(&host, SessionLimits::default(), 144);
            s.execute("await callTool('hang', {}); return 1".into()).unwrap();
            s
        })
        .collect();
    // V8 aborts its process: the array split would need more elements than V8 allows.
    let crash = session_with_memory(&host, SessionLimits::default(), 144);
    crash.execute("return 'x,'.repeat(2 ** 27).split(',').length".into()).unwrap();
    let f = wait(&crash);
    assert_eq!(f.error_code(), "MEMORY_LIMIT_EXCEEDED", "{}", f.error_message());
    assert!(f.error_message().starts_with("Memory limit exceeded: "), "{}", f.error_message());
    for s in &waiting {
        let f = wait(s);
        assert!(
            ["MEMORY_LIMIT_EXCEEDED", "ENGINE_CRASHED"].contains(&f.error_code().as_str()),
            "{}",
            f.error_code()
        );
    }
    let after = enclave_broker_core::engine::pool_stats();
    assert!(after.crashed > before.crashed, "{after:?}");
    assert!(after.lost_executions >= before.lost_executions + 3, "{after:?}");
    // The executions of other processes went on.
    for s in spinning {
        assert_eq!(wait(&s).result.value_json.as_deref(), Some("449999985000000"));
    }
    assert_eq!(run("return 'still here'").result.value_json.as_deref(), Some(r#""still here""#));
}

#[test]
fn a_builtin_that_ignores_termination_ends_after_the_grace_period() {
    let start = Instant::now();
    let limits = SessionLimits { tool_timeout_ms: 500, ..Default::default() };
    // Its process may be killed later (all its executions with it): a memory limit of its own
    // keeps it apart. `lastIndexOf` on 2^32 - 1 holes runs for many seconds in C++ without
    // allocating, so it cannot end at the memory limit instead (see `tests/stops.rs`).
    let s = session_with_memory(&TestHost::new(), limits, 136);
    s.execute("new Array(2 ** 32 - 1).lastIndexOf(1); return 1".into()).unwrap();
    let f = wait(&s);
    assert_eq!(f.error_code(), "TIMEOUT");
    assert_eq!(f.error_message(), "Script execution timed out after 500ms");
    // 500 ms limit + 250 ms grace before it is detached, with room for a loaded machine.
    assert!(start.elapsed() < Duration::from_millis(3000), "took {:?}", start.elapsed());
}

#[test]
fn memory_outside_the_heap_is_bounded_by_the_process_ceiling() {
    use_test_engine();
    let s = enclave_broker_core::session::Session::new(
        enclave_broker_core::session::SessionConfig {
            limits: SessionLimits { tool_timeout_ms: 20_000, ..Default::default() },
            // A limit of its own (its process may be killed; see above).
            sandbox: enclave_broker_core::engine::SandboxOptions {
                memory_limit_bytes: 24 * 1024 * 1024,
                ..Default::default()
            },
            ..Default::default()
        },
        TestHost::new(),
    );
    s.execute("return 'ab'.repeat(2 ** 26).replace(/a/g, 'xyz').length".into()).unwrap();
    let f = wait(&s);
    assert_eq!(f.error_code(), "MEMORY_LIMIT_EXCEEDED");
}

/// When a burst ends, the isolates that go idle build their next context only when a job
/// comes (`engine/child/isolates.rs`, `wanted_ready`): the next burst runs on them, each
/// execution in a context of its own, nothing left by the first burst in sight.
#[test]
fn a_burst_after_a_burst_runs_in_fresh_contexts() {
    use enclave_broker_core::session::{ExternalTools, Session, SessionConfig};
    use_test_engine();
    // A process of its own (a memory limit no other test uses), so the bursts share its isolates.
    let config = || SessionConfig {
        external_tools: ExternalTools::All,
        sandbox: enclave_broker_core::engine::SandboxOptions {
            memory_limit_bytes: 152 << 20,
            ..Default::default()
        },
        ..Default::default()
    };
    let first: Vec<_> = (0..12)
        .map(|i| {
            let s = Session::new(config(), TestHost::new());
            let code = format!(
                "globalThis.mark = {i}; Object.prototype.leak = {i}; await callTool('client:gate', {{}}); return mark"
            );
            s.execute(code).unwrap();
            s
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let calls: Vec<String> = first
        .iter()
        .map(|s| {
            loop {
                if let Some(id) = s.waiting_call_ids().into_iter().next() {
                    break id;
                }
                assert!(Instant::now() < deadline, "the first burst never reached its tool calls");
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .collect();
    for (s, call) in first.iter().zip(&calls) {
        s.submit_tool_result(call, ToolReply::Ok(None)).unwrap();
    }
    for (i, s) in first.iter().enumerate() {
        assert_eq!(wait(s).result.value_json, Some(i.to_string()));
    }
    let second: Vec<_> = (0..12)
        .map(|_| {
            let s = Session::new(config(), TestHost::new());
            s.execute("return [typeof mark, ({}).leak === undefined]".into()).unwrap();
            s
        })
        .collect();
    for s in &second {
        assert_eq!(wait(s).result.value_json.as_deref(), Some(r#"["undefined",true]"#));
    }
}
