//! How HTTP requests become session configurations: the broker's defaults, then what the
//! route allows a request to change.

use serde_json::{Map, Value};

use crate::engine::SandboxOptions;
use crate::protocol::{PartialLimits, SessionLimits};
use crate::session::{ExternalTools, SessionConfig};

#[derive(Clone, Debug, Default)]
pub struct SessionTemplate {
    /// The broker's `limits` (None when it gave none).
    pub limits: Option<PartialLimits>,
    pub sandbox: SandboxOptions,
    pub external_tools: ExternalTools,
}

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

impl SessionTemplate {
    fn config(
        &self,
        session_id: Option<String>,
        limits: &PartialLimits,
        sandbox: SandboxOptions,
    ) -> Result<SessionConfig, String> {
        Ok(SessionConfig {
            session_id,
            limits: SessionLimits::resolve(limits).map_err(|e| e.to_string())?,
            sandbox,
            external_tools: self.external_tools.clone(),
            allowed_tools: Default::default(),
            encryption: None,
            owner_key: 0,
        })
    }

    /// `POST /execute {timeout?, maxToolCalls?, memoryLimit?, context?}` (seed route): the
    /// broker's limits with the request's overrides; `context` keys become read-only globals.
    /// `memoryLimit` (bytes) may lower the broker's heap limit, never raise it: memory is
    /// the host's, and a client must not be able to take more than the broker allows.
    pub fn for_execute(&self, body: &Map<String, Value>) -> Result<SessionConfig, String> {
        let mut limits = self.limits.clone().unwrap_or_default();
        if let Some(timeout) = number(body, "timeout")? {
            limits.tool_timeout_ms = Some(timeout);
        }
        if let Some(max) = number(body, "maxToolCalls")? {
            limits.max_tool_calls = Some(max);
        }
        let mut sandbox = self.sandbox.clone();
        if let Some(memory) = number(body, "memoryLimit")? {
            sandbox.memory_limit_bytes = sandbox.memory_limit_bytes.min(memory as usize);
        }
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
        self.config(None, &limits, sandbox)
    }

    /// `POST /sessions {sessionId?, config?}` (the original's route). As the original, the
    /// request's config replaces the broker's limits, and without one the defaults apply (Q1).
    pub fn for_create(&self, body: &Map<String, Value>) -> Result<SessionConfig, String> {
        let session_id = match body.get("sessionId") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => return Err("\"sessionId\" must be a string".into()),
        };
        let mut limits = PartialLimits::default();
        if let Some(config) = body.get("config") {
            let config = match config {
                Value::Object(c) => c,
                Value::Null => &Map::new(),
                _ => return Err("\"config\" must be an object".into()),
            };
            limits.session_ttl_ms = number(config, "maxExecutionMs")?;
            limits.max_tool_calls = number(config, "maxToolCalls")?;
            limits.heartbeat_interval_ms = number(config, "heartbeatIntervalMs")?;
        }
        self.config(session_id, &limits, self.sandbox.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn execute_overrides_merge_with_broker_limits() {
        let template = SessionTemplate {
            limits: Some(PartialLimits {
                max_tool_calls: Some(3.0),
                deadline_ms: Some(900.0),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = template.for_execute(&body(r#"{"timeout": 250, "context": {"userId": "u1"}}"#)).unwrap();
        assert_eq!(c.limits.tool_timeout_ms, 250);
        assert_eq!(c.limits.max_tool_calls, 3);
        assert_eq!(c.limits.deadline_ms, 900);
        assert_eq!(c.sandbox.globals_json.as_deref(), Some(r#"{"userId":"u1"}"#));
        assert!(template.for_execute(&body(r#"{"timeout": "soon"}"#)).is_err());
        assert!(template.for_execute(&body(r#"{"context": [1]}"#)).is_err());
    }

    #[test]
    fn execute_may_lower_the_memory_limit_but_not_raise_it() {
        let template = SessionTemplate::default();
        let broker = template.sandbox.memory_limit_bytes;
        let c = template.for_execute(&body(r#"{"memoryLimit": 33554432}"#)).unwrap();
        assert_eq!(c.sandbox.memory_limit_bytes, 32 << 20);
        let c = template.for_execute(&body(r#"{"memoryLimit": 1e12}"#)).unwrap();
        assert_eq!(c.sandbox.memory_limit_bytes, broker);
        assert_eq!(template.for_execute(&body("{}")).unwrap().sandbox.memory_limit_bytes, broker);
        assert!(template.for_execute(&body(r#"{"memoryLimit": -1}"#)).is_err());
        assert!(template.for_execute(&body(r#"{"memoryLimit": "64MB"}"#)).is_err());
    }

    #[test]
    fn create_replaces_broker_limits_like_the_original() {
        let template = SessionTemplate {
            limits: Some(PartialLimits { max_tool_calls: Some(3.0), ..Default::default() }),
            ..Default::default()
        };
        let c = template.for_create(&body(r#"{"code": "1"}"#)).unwrap();
        assert_eq!(c.limits, SessionLimits::default());
        let c = template.for_create(&body(r#"{"config": {"heartbeatIntervalMs": 40}}"#)).unwrap();
        assert_eq!(c.limits.heartbeat_interval_ms, 40);
        assert_eq!(c.limits.max_tool_calls, 50);
    }
}
