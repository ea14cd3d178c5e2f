//! Test harness: a tool host implemented in Rust and helpers to run a session to the end.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enclave_broker_core::protocol::{ErrorInfo, SessionLimits, StreamEvent};
use enclave_broker_core::session::{FinalResult, Session, SessionConfig};
use enclave_broker_core::tools::{ToolCall, ToolHost, ToolReply, ToolReplySender};

type Handler = Box<dyn Fn(&str) -> Option<ToolReply> + Send + Sync>;

/// Runs handlers synchronously on the engine thread. A handler returning `None` never
/// replies (its sender is parked), which models a handler that never resolves.
#[derive(Default)]
pub struct TestHost {
    handlers: Mutex<HashMap<String, Handler>>,
    parked: Mutex<Vec<ToolReplySender>>,
    pub aborted: Mutex<Vec<u64>>,
    pub calls: Mutex<Vec<(String, String)>>,
}

impl TestHost {
    pub fn new() -> Arc<TestHost> {
        Arc::new(TestHost::default())
    }

    pub fn tool(
        self: &Arc<Self>,
        name: &str,
        f: impl Fn(&str) -> Option<ToolReply> + Send + Sync + 'static,
    ) -> Arc<Self> {
        self.handlers.lock().unwrap().insert(name.to_string(), Box::new(f));
        self.clone()
    }
}

impl ToolHost for TestHost {
    fn call(&self, call: ToolCall, reply: ToolReplySender) {
        self.calls.lock().unwrap().push((call.name.clone(), call.args_json.clone()));
        let handlers = self.handlers.lock().unwrap();
        match handlers.get(&call.name) {
            None => {
                let _ = reply.send(ToolReply::Err(ErrorInfo::new(
                    "UNKNOWN_TOOL",
                    format!("Unknown tool: {}", call.name),
                )));
            }
            Some(handler) => match handler(&call.args_json) {
                Some(r) => {
                    let _ = reply.send(r);
                }
                None => self.parked.lock().unwrap().push(reply),
            },
        }
    }

    fn abort(&self, call_key: u64) {
        self.aborted.lock().unwrap().push(call_key);
    }
}

pub struct Finished {
    pub result: Arc<FinalResult>,
    pub events: Vec<Arc<StreamEvent>>,
}

impl Finished {
    pub fn types(&self) -> Vec<&'static str> {
        self.events.iter().map(|e| e.kind().as_str()).collect()
    }

    pub fn final_payload(&self) -> serde_json::Value {
        let last = self.events.last().expect("events");
        serde_json::from_str(last.payload_json()).unwrap()
    }

    pub fn error_code(&self) -> String {
        self.result.error.as_ref().map(|e| e.code.clone()).unwrap_or_default()
    }

    pub fn error_message(&self) -> String {
        self.result.error.as_ref().map(|e| e.message.clone()).unwrap_or_default()
    }
}

/// Points the engine pool at the engine binary cargo built for these tests.
pub fn use_test_engine() {
    enclave_broker_core::engine::set_executable(env!("CARGO_BIN_EXE_enclave-engine"));
}

pub fn session(host: &Arc<TestHost>, limits: SessionLimits) -> Arc<Session> {
    use_test_engine();
    Session::new(SessionConfig { limits, ..Default::default() }, host.clone())
}

pub fn wait(session: &Arc<Session>) -> Finished {
    let (tx, rx) = mpsc::channel();
    session.on_finished(move |r| {
        let _ = tx.send(r.clone());
    });
    let result = rx.recv_timeout(Duration::from_secs(20)).expect("execution finished in time");
    Finished { result, events: session.events() }
}

pub fn run_with(host: &Arc<TestHost>, limits: SessionLimits, code: &str) -> Finished {
    let s = session(host, limits);
    s.execute(code.to_string()).expect("execute");
    wait(&s)
}

/// A session whose scripts get `memory_limit_mib` of memory. An engine process runs scripts
/// of one memory limit only, so a limit no other test uses gives a test processes of its
/// own: a test that kills or crashes one cannot end another test's executions.
pub fn session_with_memory(
    host: &Arc<TestHost>,
    limits: SessionLimits,
    memory_limit_mib: usize,
) -> Arc<Session> {
    use_test_engine();
    let sandbox = enclave_broker_core::engine::SandboxOptions {
        memory_limit_bytes: memory_limit_mib << 20,
        ..Default::default()
    };
    Session::new(SessionConfig { limits, sandbox, ..Default::default() }, host.clone())
}

pub fn run(code: &str) -> Finished {
    run_with(&TestHost::new(), SessionLimits::default(), code)
}

pub fn ok(json: &str) -> Option<ToolReply> {
    Some(ToolReply::Ok(Some(json.to_string())))
}
