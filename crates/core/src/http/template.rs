//! How HTTP requests become session configurations: the operator's limits (the broker's),
//! which a request may only tighten. Both session routes take the same keys (`/execute` in
//! its body, `/sessions` in `config`), and each is clamped the same way:
//!
//! - `timeout` (`toolTimeoutMs`), `deadlineMs`, `perToolDeadlineMs`: `min(client,
//!   operator)`; a client `0` keeps the operator's value (it never means "none").
//! - `maxToolCalls`: `min(client, operator)` (`0` allows no calls).
//! - `sessionTtlMs` (`maxExecutionMs` on `/sessions`, as the original): between
//!   `TTL_FLOOR` (or the operator's TTL, if shorter) and the operator's TTL.
//! - `heartbeatIntervalMs`: between `HEARTBEAT_FLOOR` and `HEARTBEAT_CEILING` (widened to the
//!   operator's own interval); `0` keeps the operator's.
//! - `memoryLimit` (bytes): at most the operator's, rounded down to a power of two (so
//!   clients cannot make the pool keep engines of many heap sizes), at least the engine's
//!   minimum; `0` keeps the operator's.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::engine::{MIN_MEMORY_LIMIT, SandboxOptions};
use crate::protocol::SessionLimits;
use crate::session::{ExternalTools, SessionConfig};
use crate::sidecar::ReferenceConfig;

pub const TTL_FLOOR: Duration = Duration::from_secs(1);
pub const HEARTBEAT_FLOOR: Duration = Duration::from_secs(1);
pub const HEARTBEAT_CEILING: Duration = Duration::from_secs(60);
/// The longest client-chosen session id (`[A-Za-z0-9._:~-]`).
pub const MAX_SESSION_ID_LENGTH: usize = 128;

#[derive(Clone, Debug, Default)]
pub struct SessionTemplate {
    /// The operator's limits: the broker's `limits` (the defaults where it gave none).
    pub limits: SessionLimits,
    /// The operator's sandbox (its memory limit bounds a request's).
    pub sandbox: SandboxOptions,
    pub external_tools: ExternalTools,
    /// The operator's reference sidecar (`enclave.sidecar`), when enabled.
    pub sidecar: Option<ReferenceConfig>,
}

#[derive(Clone, Copy)]
enum Limit {
    Timeout,
    MaxToolCalls,
    Heartbeat,
    Ttl,
    Deadline,
    PerToolDeadline,
    Memory,
}

/// Every limit a request may set, by the key it uses.
const CLIENT_LIMITS: [(&str, Limit); 9] = [
    ("timeout", Limit::Timeout),
    ("toolTimeoutMs", Limit::Timeout),
    ("maxToolCalls", Limit::MaxToolCalls),
    ("heartbeatIntervalMs", Limit::Heartbeat),
    ("sessionTtlMs", Limit::Ttl),
    ("maxExecutionMs", Limit::Ttl),
    ("deadlineMs", Limit::Deadline),
    ("perToolDeadlineMs", Limit::PerToolDeadline),
    ("memoryLimit", Limit::Memory),
];

fn number(body: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v >= 0.0 => Ok(Some(v)),
            _ => Err(format!("\"{key}\" must be a non-negative number")),
        },
        Some(_) => Err(format!("\"{key}\" must be a non-negative number")),
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// `min(client, operator)` for a duration whose `0` means "none": a client `0` is ignored.
fn tighter(operator: u64, client: u64) -> u64 {
    match (operator, client) {
        (_, 0) => operator,
        (0, _) => client,
        _ => operator.min(client),
    }
}

fn heartbeat(operator: u64, client: u64) -> u64 {
    if client == 0 {
        return operator;
    }
    let operator_set = operator != 0 && operator != u64::MAX;
    let floor = if operator_set { millis(HEARTBEAT_FLOOR).min(operator) } else { millis(HEARTBEAT_FLOOR) };
    let ceiling =
        if operator_set { millis(HEARTBEAT_CEILING).max(operator) } else { millis(HEARTBEAT_CEILING) };
    client.clamp(floor, ceiling)
}

fn memory(operator: usize, client: u64) -> usize {
    if client == 0 {
        return operator;
    }
    let bounded = usize::try_from(client).unwrap_or(usize::MAX).min(operator);
    let power_of_two = if bounded == 0 { 0 } else { 1usize << (usize::BITS - 1 - bounded.leading_zeros()) };
    power_of_two.max(MIN_MEMORY_LIMIT).min(operator.max(MIN_MEMORY_LIMIT))
}

/// A client duration or count in whole units: durations round up, so a tiny positive value
/// never becomes `0`.
fn whole(limit: Limit, value: f64) -> u64 {
    match limit {
        Limit::MaxToolCalls | Limit::Memory => value as u64,
        _ => value.ceil() as u64,
    }
}

impl SessionTemplate {
    /// The operator's limits and sandbox, tightened by the request's `CLIENT_LIMITS` keys
    /// found in `requested`.
    fn tightened(&self, requested: &Map<String, Value>) -> Result<(SessionLimits, SandboxOptions), String> {
        let mut limits = self.limits.clone();
        let mut sandbox = self.sandbox.clone();
        let operator = &self.limits;
        for (key, limit) in CLIENT_LIMITS {
            let Some(value) = number(requested, key)? else { continue };
            let client = whole(limit, value);
            match limit {
                Limit::Timeout => limits.tool_timeout_ms = tighter(limits.tool_timeout_ms, client),
                Limit::MaxToolCalls => limits.max_tool_calls = limits.max_tool_calls.min(client),
                Limit::Deadline => limits.deadline_ms = tighter(limits.deadline_ms, client),
                Limit::PerToolDeadline => {
                    limits.per_tool_deadline_ms = tighter(limits.per_tool_deadline_ms, client)
                }
                Limit::Heartbeat => {
                    limits.heartbeat_interval_ms = heartbeat(operator.heartbeat_interval_ms, client)
                }
                Limit::Ttl => {
                    let ceiling = operator.session_ttl_ms;
                    let ttl = client.clamp(millis(TTL_FLOOR).min(ceiling), ceiling);
                    limits.session_ttl_ms = limits.session_ttl_ms.min(ttl);
                }
                Limit::Memory => {
                    sandbox.memory_limit_bytes = memory(sandbox.memory_limit_bytes, client);
                    limits.memory_limit_bytes = Some(sandbox.memory_limit_bytes as u64);
                }
            }
        }
        Ok((limits, sandbox))
    }

    fn config(
        &self,
        session_id: Option<String>,
        limits: SessionLimits,
        sandbox: SandboxOptions,
    ) -> SessionConfig {
        SessionConfig {
            session_id,
            limits,
            sandbox,
            external_tools: self.external_tools.clone(),
            sidecar: self.sidecar.clone(),
            ..SessionConfig::default()
        }
    }

    /// `POST /execute {timeout?, maxToolCalls?, ...limits, context?}` (seed route): the
    /// operator's limits, tightened; `context` keys become read-only globals.
    pub fn for_execute(&self, body: &Map<String, Value>) -> Result<SessionConfig, String> {
        let (limits, mut sandbox) = self.tightened(body)?;
        match body.get("context") {
            None | Some(Value::Null) => {}
            Some(Value::Object(context)) => {
                let mut globals: Map<String, Value> = sandbox
                    .globals_json
                    .as_deref()
                    .and_then(|g| serde_json::from_str(g).ok())
                    .unwrap_or_default();
                for (key, value) in context {
                    if matches!(key.as_str(), "__proto__" | "constructor" | "prototype") {
                        return Err(format!("\"context\" must not have the key \"{key}\""));
                    }
                    globals.insert(key.clone(), value.clone());
                }
                sandbox.globals_json = Some(Value::Object(globals).to_string());
            }
            Some(_) => return Err("\"context\" must be an object".into()),
        }
        Ok(self.config(None, limits, sandbox))
    }

    /// `POST /sessions {sessionId?, config?: {maxExecutionMs?, maxToolCalls?,
    /// heartbeatIntervalMs?, ...limits}}` (the original's route): the operator's limits,
    /// tightened by `config` (unlike the original, whose `config` replaced them, Q1 in docs/compatibility.md).
    pub fn for_create(&self, body: &Map<String, Value>) -> Result<SessionConfig, String> {
        let session_id = match body.get("sessionId") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if valid_session_id(id) => Some(id.clone()),
            Some(_) => {
                return Err(format!(
                    "\"sessionId\" must be 1 to {MAX_SESSION_ID_LENGTH} characters of letters, digits and ._:~-"
                ));
            }
        };
        let (limits, sandbox) = match body.get("config") {
            None | Some(Value::Null) => (self.limits.clone(), self.sandbox.clone()),
            Some(Value::Object(config)) => self.tightened(config)?,
            Some(_) => return Err("\"config\" must be an object".into()),
        };
        Ok(self.config(session_id, limits, sandbox))
    }
}

fn valid_session_id(id: &str) -> bool {
    (1..=MAX_SESSION_ID_LENGTH).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:~-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn operator() -> SessionTemplate {
        SessionTemplate {
            limits: SessionLimits {
                max_tool_calls: 3,
                deadline_ms: 900,
                tool_timeout_ms: 1000,
                session_ttl_ms: 5000,
                heartbeat_interval_ms: 15_000,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn execute_requests_can_only_tighten() {
        let template = operator();
        let c = template.for_execute(&body(r#"{"timeout": 250, "context": {"userId": "u1"}}"#)).unwrap();
        assert_eq!(c.limits.tool_timeout_ms, 250);
        assert_eq!(c.limits.max_tool_calls, 3);
        assert_eq!(c.limits.deadline_ms, 900);
        assert_eq!(c.sandbox.globals_json.as_deref(), Some(r#"{"userId":"u1"}"#));
        let loose = template
            .for_execute(&body(
                r#"{"timeout": 0, "maxToolCalls": 20, "deadlineMs": 0, "perToolDeadlineMs": 1e12}"#,
            ))
            .unwrap();
        assert_eq!(loose.limits.tool_timeout_ms, 1000);
        assert_eq!(loose.limits.max_tool_calls, 3);
        assert_eq!(loose.limits.deadline_ms, 900);
        assert_eq!(loose.limits.per_tool_deadline_ms, 30_000);
        assert_eq!(template.for_execute(&body(r#"{"maxToolCalls": 0}"#)).unwrap().limits.max_tool_calls, 0);
        assert!(template.for_execute(&body(r#"{"timeout": "soon"}"#)).is_err());
        assert!(template.for_execute(&body(r#"{"timeout": -1}"#)).is_err());
        assert!(template.for_execute(&body(r#"{"context": [1]}"#)).is_err());
    }

    #[test]
    fn create_requests_start_from_the_operator_and_are_clamped() {
        let template = operator();
        assert_eq!(template.for_create(&body(r#"{"code": "1"}"#)).unwrap().limits, template.limits);
        let c = template
            .for_create(&body(
                r#"{"config": {"heartbeatIntervalMs": 1, "maxExecutionMs": 2.7e12, "maxToolCalls": 50}}"#,
            ))
            .unwrap();
        assert_eq!(c.limits.heartbeat_interval_ms, 1000);
        assert_eq!(c.limits.session_ttl_ms, 5000);
        assert_eq!(c.limits.max_tool_calls, 3);
        let c = template
            .for_create(&body(r#"{"config": {"heartbeatIntervalMs": 1e9, "maxExecutionMs": 0}}"#))
            .unwrap();
        assert_eq!(c.limits.heartbeat_interval_ms, 60_000);
        assert_eq!(c.limits.session_ttl_ms, 1000);
        assert_eq!(
            template
                .for_create(&body(r#"{"config": {"heartbeatIntervalMs": 0}}"#))
                .unwrap()
                .limits
                .heartbeat_interval_ms,
            15_000
        );
        assert!(template.for_create(&body(r#"{"sessionId": "has space"}"#)).is_err());
        assert!(template.for_create(&body(&format!(r#"{{"sessionId": "{}"}}"#, "s".repeat(129)))).is_err());
        assert!(template.for_create(&body(r#"{"sessionId": "s_ok-1.2:x~"}"#)).is_ok());
    }

    #[test]
    fn memory_is_bounded_and_rounded_to_a_power_of_two() {
        let template = operator();
        let mib = 1024 * 1024;
        let memory = |json: &str| template.for_execute(&body(json)).unwrap().sandbox.memory_limit_bytes;
        assert_eq!(memory(r#"{"memoryLimit": 0}"#), 128 * mib);
        assert_eq!(memory(r#"{"memoryLimit": 1e15}"#), 128 * mib);
        assert_eq!(memory(r#"{"memoryLimit": 50000000}"#), 32 * mib);
        assert_eq!(memory(r#"{"memoryLimit": 1}"#), MIN_MEMORY_LIMIT);
    }
}
