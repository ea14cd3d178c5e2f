//! `SessionFinalResult` and `ExecutionStats` in the original's JSON shape.

use super::state::SessionState;
use crate::protocol::ErrorInfo;
use crate::protocol::json::{JsonObject, js_number};

#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionStats {
    pub duration_ms: f64,
    pub tool_call_count: u64,
    pub start_time: f64,
    pub end_time: f64,
}

impl ExecutionStats {
    pub fn to_json(&self) -> String {
        JsonObject::new()
            .num("duration", self.duration_ms)
            .field("toolCallCount", &self.tool_call_count)
            // The original never counts iterations; the key stays for shape compatibility.
            .field("iterationCount", &0)
            .num("startTime", self.start_time)
            .num("endTime", self.end_time)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FinalResult {
    /// JSON of the script's return value; `None` when it returned `undefined`.
    pub value_json: Option<String>,
    pub error: Option<ErrorInfo>,
    pub stats: ExecutionStats,
    pub final_state: SessionState,
}

impl FinalResult {
    pub fn success(&self) -> bool {
        self.error.is_none()
    }

    /// `{success, value?, error?: {message, name, code}, stats, finalState}`.
    pub fn to_json(&self) -> String {
        let error = self.error.as_ref().map(|e| {
            JsonObject::new()
                .field("message", &e.message)
                .field("name", &e.name)
                .field("code", &e.code)
                .finish()
        });
        JsonObject::new()
            .field("success", &self.success())
            .opt_raw("value", self.value_json.as_deref())
            .opt_raw("error", error.as_deref())
            .raw("stats", &self.stats.to_json())
            .field("finalState", self.final_state.as_str())
            .finish()
    }

    pub fn duration_json(&self) -> String {
        js_number(self.stats.duration_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_shape() {
        let r = FinalResult {
            value_json: Some("3".into()),
            error: None,
            stats: ExecutionStats { duration_ms: 2.0, tool_call_count: 0, start_time: 10.0, end_time: 12.0 },
            final_state: SessionState::Completed,
        };
        assert_eq!(
            r.to_json(),
            r#"{"success":true,"value":3,"stats":{"duration":2,"toolCallCount":0,"iterationCount":0,"startTime":10,"endTime":12},"finalState":"completed"}"#
        );
    }

    #[test]
    fn failure_shape_has_message_name_code_in_order() {
        let r = FinalResult {
            value_json: None,
            error: Some(ErrorInfo::new("SESSION_CANCELLED", "stop please")),
            stats: ExecutionStats { duration_ms: 0.0, tool_call_count: 0, start_time: 1.0, end_time: 1.0 },
            final_state: SessionState::Cancelled,
        };
        assert!(r.to_json().starts_with(
            r#"{"success":false,"error":{"message":"stop please","name":"Error","code":"SESSION_CANCELLED"}"#
        ));
        assert!(r.to_json().ends_with(r#""finalState":"cancelled"}"#));
    }
}
