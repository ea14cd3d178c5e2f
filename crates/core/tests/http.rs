//! The listen() server over real sockets, without Node.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use enclave_broker_core::http::auth::{DEFAULT_FAILURE_WINDOW, DEFAULT_MAX_FAILURES};
use enclave_broker_core::http::{
    AuthConfig, AuthKind, AuthResult, AuthValidator, BoxFuture, HttpConfig, HttpServer, RateLimitConfig,
    RequestInfo,
};
use enclave_broker_core::runtime;
use enclave_broker_core::session::{ExternalTools, SessionManager};
use serde_json::Value;

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn lines(&self) -> Vec<Value> {
        self.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

fn dechunk(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

fn send(addr: SocketAddr, raw: &str) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(": ").map(|(n, v)| (n.to_lowercase(), v.to_string()))).collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v == "chunked");
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Response { status, headers, body }
}

fn request(addr: SocketAddr, method: &str, path: &str, extra: &str, body: &str) -> Response {
    send(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn start(config: HttpConfig, host: Arc<TestHost>) -> (HttpServer, SocketAddr, Arc<SessionManager>) {
    use_test_engine();
    let manager = Arc::new(SessionManager::new(100, host));
    let server =
        HttpServer::start(HttpConfig { host: "127.0.0.1".into(), ..config }, manager.clone()).unwrap();
    let addr = server.local_addr();
    (server, addr, manager)
}

fn close(server: HttpServer) {
    runtime::service().block_on(server.close(Duration::from_millis(500)));
}

#[test]
fn execute_streams_every_event_as_ndjson() {
    let host = TestHost::new().tool("add", |_| ok("3"));
    let (server, addr, _) = start(HttpConfig::default(), host);
    let r = request(
        addr,
        "POST",
        "/execute",
        "",
        r#"{"code":"console.log('hi'); return await callTool('add', {a:1})"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let events = r.lines();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "session_init",
            "stdout",
            "tool_call",
            "tool_progress",
            "tool_progress",
            "tool_result_applied",
            "final"
        ]
    );
    assert_eq!(events[0]["sessionId"].as_str(), r.header("x-session-id"));
    assert_eq!(events.last().unwrap()["payload"]["result"], 3);
    let filtered = request(
        addr,
        "POST",
        "/execute",
        "",
        r#"{"code":"console.log('a'); return 1","filter":{"types":["stdout"]}}"#,
    );
    let types: Vec<String> =
        filtered.lines().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(types, ["session_init", "stdout", "final"]);
    close(server);
}

#[test]
fn bad_requests_get_clear_4xx_errors() {
    let config =
        HttpConfig { max_body_bytes: 64, body_timeout: Duration::from_millis(300), ..Default::default() };
    let (server, addr, _) = start(config, TestHost::new());
    let r = request(addr, "POST", "/execute", "", "{not json");
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("INVALID_REQUEST")));
    assert_eq!(r.json()["message"], "Malformed JSON body");
    let r = request(addr, "POST", "/execute", "", r#"{"code": 42}"#);
    assert_eq!(r.json()["message"], "Missing or invalid \"code\" field");
    let r = request(addr, "POST", "/execute", "", &format!(r#"{{"code":"{}"}}"#, "x".repeat(100)));
    assert_eq!((r.status, r.json()["code"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")));
    let r = request(addr, "POST", "/execute", "", r#"{"code":"1","timeout":"soon"}"#);
    assert_eq!(r.status, 400);
    let r = request(addr, "POST", "/execute", "", r#"{"code":"1","filter":{"types":["nope"]}}"#);
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("INVALID_FILTER")));
    // Half a body, then silence.
    let r = send(addr, "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"code\":");
    assert_eq!((r.status, r.json()["code"].as_str()), (408, Some("REQUEST_TIMEOUT")));
    let r = request(addr, "GET", "/sessions/s_missing", "", "");
    assert_eq!((r.status, r.json()["message"].as_str()), (404, Some("Session s_missing not found")));
    let r = request(addr, "GET", "/nowhere", "", "");
    assert_eq!(r.status, 404);
    let r = request(addr, "PUT", "/execute", "", "");
    assert_eq!(r.status, 405);
    let r = request(addr, "OPTIONS", "/sessions", "Origin: http://a\r\n", "");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST, DELETE, OPTIONS"));
    close(server);
}

#[test]
fn sessions_can_be_inspected_and_replayed() {
    let (server, addr, manager) = start(HttpConfig::default(), TestHost::new());
    let r = request(
        addr,
        "POST",
        "/sessions",
        "",
        r#"{"code":"console.log(1); console.log(2); return 3","sessionId":"s_fixed"}"#,
    );
    assert_eq!(r.header("x-session-id"), Some("s_fixed"));
    let all = r.lines();
    assert_eq!(all.len(), 4);
    let info = request(addr, "GET", "/sessions/s_fixed", "", "").json();
    assert_eq!(info["state"], "completed");
    assert_eq!(info["stats"]["toolCallCount"], 0);
    for (path, extra, first) in [
        ("/sessions/s_fixed/stream?fromSeq=3", "", 3),
        ("/sessions/s_fixed/stream?from=2", "", 2),
        ("/sessions/s_fixed/stream", "Last-Event-ID: 3\r\n", 4),
        ("/sessions/s_fixed/stream?fromSeq=abc", "", 1),
    ] {
        let replay = request(addr, "GET", path, extra, "").lines();
        assert_eq!(replay[0]["seq"], first, "{path}");
        assert_eq!(replay.last().unwrap()["type"], "final");
        assert_eq!(replay.len(), 4 - first as usize + 1);
    }
    let list = request(addr, "GET", "/sessions", "", "").json();
    assert_eq!(list["total"], 1);
    assert_eq!(request(addr, "GET", "/health", "", "").json()["sessions"]["total"], 1);
    let bad = request(addr, "GET", "/sessions/s_fixed/stream?filter=%7Bnope", "", "");
    assert_eq!((bad.status, bad.json()["code"].as_str()), (400, Some("INVALID_FILTER")));
    assert_eq!(request(addr, "DELETE", "/sessions/s_fixed", "", "").json()["success"], true);
    assert!(!manager.has("s_fixed"));
    close(server);
}

struct Tokens;

impl AuthValidator for Tokens {
    fn validate(&self, token: String, _request: &RequestInfo) -> BoxFuture<Result<AuthResult, String>> {
        Box::pin(async move {
            match token.as_str() {
                "good" => Ok(AuthResult { valid: true, user_id: Some("u1".into()), tenant_id: None }),
                "other" => Ok(AuthResult { valid: true, user_id: Some("u2".into()), tenant_id: None }),
                "boom" => Err("validator threw".into()),
                _ => Ok(AuthResult::default()),
            }
        })
    }
}

#[test]
fn authentication_and_rate_limits_answer_401_and_429() {
    let config = HttpConfig {
        auth: Some(AuthConfig {
            kind: AuthKind::Bearer,
            validator: Arc::new(Tokens),
            max_failures: DEFAULT_MAX_FAILURES,
            failure_window: DEFAULT_FAILURE_WINDOW,
        }),
        rate_limit: Some(RateLimitConfig {
            window: Duration::from_secs(60),
            max_requests: 2,
            key_generator: None,
        }),
        ..Default::default()
    };
    let (server, addr, _) = start(config, TestHost::new());
    let missing = request(addr, "GET", "/sessions", "", "");
    assert_eq!((missing.status, missing.json()["code"].as_str()), (401, Some("UNAUTHORIZED")));
    assert_eq!(request(addr, "GET", "/sessions", "Authorization: Bearer bad\r\n", "").status, 401);
    assert_eq!(request(addr, "GET", "/sessions", "Authorization: Basic good\r\n", "").status, 401);
    assert_eq!(request(addr, "GET", "/sessions", "Authorization: Bearer boom\r\n", "").status, 401);
    assert_eq!(request(addr, "GET", "/health", "", "").status, 200);
    let created =
        request(addr, "POST", "/sessions", "Authorization: Bearer good\r\n", r#"{"code":"return 1"}"#);
    let id = created.header("x-session-id").unwrap().to_string();
    // Another principal gets the 404 of a missing session (and spends its own bucket).
    let foreign = request(addr, "GET", &format!("/sessions/{id}"), "Authorization: Bearer other\r\n", "");
    assert_eq!(
        (foreign.status, foreign.json()["message"].clone()),
        (404, format!("Session {id} not found").into())
    );
    assert_eq!(
        request(addr, "GET", &format!("/sessions/{id}"), "Authorization: Bearer good\r\n", "").status,
        200
    );
    let limited = request(addr, "GET", "/sessions", "Authorization: Bearer good\r\n", "");
    assert_eq!((limited.status, limited.json()["code"].as_str()), (429, Some("RATE_LIMITED")));
    assert_eq!(limited.header("retry-after"), Some("60"));
    close(server);
}

#[test]
fn external_tool_results_arrive_over_http() {
    use_test_engine();
    let manager = Arc::new(SessionManager::new(10, TestHost::new()));
    let mut config = HttpConfig { host: "127.0.0.1".into(), ..Default::default() };
    config.template.external_tools = ExternalTools::All;
    let server = HttpServer::start(config, manager.clone()).unwrap();
    let addr = server.local_addr();
    let streaming = std::thread::spawn(move || {
        request(
            addr,
            "POST",
            "/sessions",
            "",
            r#"{"code":"return (await callTool('ask', {})).n + 1","sessionId":"s_ext"}"#,
        )
    });
    let call_id = loop {
        if let Some(id) = manager.get("s_ext").and_then(|s| s.waiting_call_ids().into_iter().next()) {
            break id;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wrong = request(addr, "POST", "/sessions/s_ext/tool-result", "", r#"{"callId":"c_no","result":1}"#);
    assert_eq!(wrong.status, 409);
    let ok = request(
        addr,
        "POST",
        "/sessions/s_ext/tool-result",
        "",
        &format!(r#"{{"callId":"{call_id}","result":{{"n":41}}}}"#),
    );
    assert_eq!(ok.json()["success"], true);
    let events = streaming.join().unwrap().lines();
    assert_eq!(events.last().unwrap()["payload"]["result"], 42);
    close(server);
}

#[test]
fn close_frees_the_port_and_ends_open_streams() {
    let host = TestHost::new().tool("hang", |_| None);
    let (server, addr, _) = start(HttpConfig::default(), host);
    let open = std::thread::spawn(move || {
        request(addr, "POST", "/execute", "", r#"{"code":"await callTool('hang', {})"}"#)
    });
    std::thread::sleep(Duration::from_millis(200));
    close(server);
    let events = open.join().unwrap().lines();
    let last = events.last().unwrap();
    assert_eq!(last["type"], "final");
    assert_eq!(last["payload"]["error"]["code"], "SESSION_CANCELLED");
    std::net::TcpListener::bind(addr).expect("the port is free again");
}
