//! `SessionLimits` with the original's names and defaults (`DEFAULT_SESSION_LIMITS`).
//! A partial limits object is resolved against the defaults key by key; the caller
//! decides *which* partial object applies (the original's shallow merge, quirk Q1 in docs/compatibility.md).

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct SessionLimits {
    pub session_ttl_ms: u64,
    pub max_tool_calls: u64,
    pub max_stdout_bytes: u64,
    /// Console calls whose output becomes events, per run (a seed-style addition: 262,144
    /// one-byte lines fit `maxStdoutBytes` but would be as many events).
    pub max_stdout_events: u64,
    pub max_tool_result_bytes: u64,
    /// The whole-script timeout (the original passes it to the Enclave as `timeout`). 0 = none.
    pub tool_timeout_ms: u64,
    /// 0 disables heartbeats.
    pub heartbeat_interval_ms: u64,
    /// Budget measured from session creation. 0 = none.
    pub deadline_ms: u64,
    pub per_tool_deadline_ms: u64,
    pub cancel_on_first_error: bool,
    /// V8 heap limit for the script, if given in `limits.memoryLimit` (an accepted alias).
    pub memory_limit_bytes: Option<u64>,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            session_ttl_ms: 60_000,
            max_tool_calls: 50,
            max_stdout_bytes: 262_144,
            max_stdout_events: 10_000,
            max_tool_result_bytes: 5_242_880,
            tool_timeout_ms: 30_000,
            heartbeat_interval_ms: 15_000,
            deadline_ms: 0,
            per_tool_deadline_ms: 30_000,
            cancel_on_first_error: false,
            memory_limit_bytes: None,
        }
    }
}

/// Limits as a caller supplied them: every key optional, numbers as JavaScript numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartialLimits {
    pub session_ttl_ms: Option<f64>,
    pub max_tool_calls: Option<f64>,
    pub max_stdout_bytes: Option<f64>,
    pub max_stdout_events: Option<f64>,
    pub max_tool_result_bytes: Option<f64>,
    pub tool_timeout_ms: Option<f64>,
    pub heartbeat_interval_ms: Option<f64>,
    pub deadline_ms: Option<f64>,
    pub per_tool_deadline_ms: Option<f64>,
    pub cancel_on_first_error: Option<bool>,
    /// Seed alias of `toolTimeoutMs` (used only when `toolTimeoutMs` is absent).
    pub timeout: Option<f64>,
    pub memory_limit: Option<f64>,
}

/// A limit a caller gave as it gave it: a number, a boolean, or any other value, shown the
/// way the caller's language shows it (`"5"`, `an array`, `[object Object]`).
#[derive(Clone, Debug, PartialEq)]
pub enum LimitInput {
    Number(f64),
    Bool(bool),
    Other(String),
}

/// Whether a limit is a count or duration (a non-negative number) or a switch (a boolean).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    Number,
    Bool,
}

/// Every key a `limits` object may have, with the seed aliases `timeout` (of
/// `toolTimeoutMs`) and `memoryLimit` (of `enclave.memoryLimit`); other keys are ignored.
pub const LIMIT_KEYS: [(&str, LimitKind); 12] = [
    ("sessionTtlMs", LimitKind::Number),
    ("maxToolCalls", LimitKind::Number),
    ("maxStdoutBytes", LimitKind::Number),
    ("maxStdoutEvents", LimitKind::Number),
    ("maxToolResultBytes", LimitKind::Number),
    ("toolTimeoutMs", LimitKind::Number),
    ("heartbeatIntervalMs", LimitKind::Number),
    ("deadlineMs", LimitKind::Number),
    ("perToolDeadlineMs", LimitKind::Number),
    ("cancelOnFirstError", LimitKind::Bool),
    ("timeout", LimitKind::Number),
    ("memoryLimit", LimitKind::Number),
];

/// A limit that is not what its key takes: `Invalid session limit "<key>": expected <...>,
/// got <the value>`, the message every API that takes limits reports (a `TypeError` in
/// JavaScript), raised before anything is created.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitsError {
    pub key: String,
    pub expected: &'static str,
    pub got: String,
}

impl LimitsError {
    fn number(key: &str, value: f64) -> LimitsError {
        LimitsError { key: key.to_string(), expected: "a non-negative number", got: show_number(value) }
    }
}

/// A number as JavaScript's `String(n)` writes it.
fn show_number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        super::json::js_number(value)
    }
}

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid session limit \"{}\": expected {}, got {}", self.key, self.expected, self.got)
    }
}

impl std::error::Error for LimitsError {}

/// A count: fractions round down (`maxToolCalls: 2.5` allows two calls, as `count > 2.5`
/// did in the original).
fn to_u64(key: &'static str, value: Option<f64>, default: u64) -> Result<u64, LimitsError> {
    match value {
        None => Ok(default),
        Some(v) if v.is_nan() || v < 0.0 => Err(LimitsError::number(key, v)),
        // `Infinity` means "no limit".
        Some(v) if v >= u64::MAX as f64 => Ok(u64::MAX),
        Some(v) => Ok(v as u64),
    }
}

/// A duration in ms: fractions round up, so a tiny positive value never becomes 0 ("off").
fn to_ms(key: &'static str, value: Option<f64>, default: u64) -> Result<u64, LimitsError> {
    to_u64(key, value.map(f64::ceil), default)
}

impl PartialLimits {
    /// The limits of a caller's `limits` object, checked key by key in `LIMIT_KEYS` order:
    /// a count or duration must be a non-negative number (`Infinity` is "no limit"), a
    /// switch a boolean. Keys not in `LIMIT_KEYS` are ignored.
    pub fn from_inputs<'k>(
        inputs: impl IntoIterator<Item = (&'k str, LimitInput)>,
    ) -> Result<PartialLimits, LimitsError> {
        let mut given: Vec<(&str, LimitInput)> = inputs.into_iter().collect();
        let mut out = PartialLimits::default();
        for (key, kind) in LIMIT_KEYS {
            let Some(index) = given.iter().position(|(k, _)| *k == key) else { continue };
            let (_, input) = given.swap_remove(index);
            let refused = |expected, got| Err(LimitsError { key: key.to_string(), expected, got });
            match (kind, input) {
                (LimitKind::Number, LimitInput::Number(v)) if v.is_nan() || v < 0.0 => {
                    return Err(LimitsError::number(key, v));
                }
                (LimitKind::Number, LimitInput::Number(v)) => out.set_number(key, v),
                (LimitKind::Bool, LimitInput::Bool(b)) => out.cancel_on_first_error = Some(b),
                (LimitKind::Number, LimitInput::Bool(b)) => {
                    return refused("a non-negative number", b.to_string());
                }
                (LimitKind::Number, LimitInput::Other(shown)) => {
                    return refused("a non-negative number", shown);
                }
                (LimitKind::Bool, LimitInput::Number(v)) => return refused("a boolean", show_number(v)),
                (LimitKind::Bool, LimitInput::Other(shown)) => return refused("a boolean", shown),
            }
        }
        Ok(out)
    }

    fn set_number(&mut self, key: &str, value: f64) {
        let slot = match key {
            "sessionTtlMs" => &mut self.session_ttl_ms,
            "maxToolCalls" => &mut self.max_tool_calls,
            "maxStdoutBytes" => &mut self.max_stdout_bytes,
            "maxStdoutEvents" => &mut self.max_stdout_events,
            "maxToolResultBytes" => &mut self.max_tool_result_bytes,
            "toolTimeoutMs" => &mut self.tool_timeout_ms,
            "heartbeatIntervalMs" => &mut self.heartbeat_interval_ms,
            "deadlineMs" => &mut self.deadline_ms,
            "perToolDeadlineMs" => &mut self.per_tool_deadline_ms,
            "timeout" => &mut self.timeout,
            "memoryLimit" => &mut self.memory_limit,
            _ => return,
        };
        *slot = Some(value);
    }
}

impl SessionLimits {
    pub fn resolve(partial: &PartialLimits) -> Result<SessionLimits, LimitsError> {
        let d = SessionLimits::default();
        let timeout = partial.tool_timeout_ms.or(partial.timeout);
        Ok(SessionLimits {
            session_ttl_ms: to_ms("sessionTtlMs", partial.session_ttl_ms, d.session_ttl_ms)?,
            max_tool_calls: to_u64("maxToolCalls", partial.max_tool_calls, d.max_tool_calls)?,
            max_stdout_bytes: to_u64("maxStdoutBytes", partial.max_stdout_bytes, d.max_stdout_bytes)?,
            max_stdout_events: to_u64("maxStdoutEvents", partial.max_stdout_events, d.max_stdout_events)?,
            max_tool_result_bytes: to_u64(
                "maxToolResultBytes",
                partial.max_tool_result_bytes,
                d.max_tool_result_bytes,
            )?,
            tool_timeout_ms: to_ms("toolTimeoutMs", timeout, d.tool_timeout_ms)?,
            heartbeat_interval_ms: to_ms(
                "heartbeatIntervalMs",
                partial.heartbeat_interval_ms,
                d.heartbeat_interval_ms,
            )?,
            deadline_ms: to_ms("deadlineMs", partial.deadline_ms, d.deadline_ms)?,
            per_tool_deadline_ms: to_ms(
                "perToolDeadlineMs",
                partial.per_tool_deadline_ms,
                d.per_tool_deadline_ms,
            )?,
            cancel_on_first_error: partial.cancel_on_first_error.unwrap_or(d.cancel_on_first_error),
            memory_limit_bytes: match partial.memory_limit {
                None => None,
                Some(v) => Some(to_u64("memoryLimit", Some(v), 0)?),
            },
        })
    }
}

impl SessionLimits {
    /// The limits under their JavaScript names, with the heap limit the script gets.
    pub fn to_json(&self, memory_limit_bytes: usize) -> String {
        super::json::JsonObject::new()
            .num("sessionTtlMs", self.session_ttl_ms as f64)
            .num("maxToolCalls", self.max_tool_calls as f64)
            .num("maxStdoutBytes", self.max_stdout_bytes as f64)
            .num("maxToolResultBytes", self.max_tool_result_bytes as f64)
            .num("toolTimeoutMs", self.tool_timeout_ms as f64)
            .num("heartbeatIntervalMs", self.heartbeat_interval_ms as f64)
            .num("deadlineMs", self.deadline_ms as f64)
            .num("perToolDeadlineMs", self.per_tool_deadline_ms as f64)
            .field("cancelOnFirstError", &self.cancel_on_first_error)
            .num("memoryLimit", memory_limit_bytes as f64)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_originals() {
        let l = SessionLimits::resolve(&PartialLimits::default()).unwrap();
        assert_eq!(l, SessionLimits::default());
        assert_eq!(l.session_ttl_ms, 60_000);
        assert_eq!(l.max_tool_calls, 50);
        assert_eq!(l.max_stdout_bytes, 262_144);
        assert_eq!(l.max_stdout_events, 10_000);
        assert_eq!(l.max_tool_result_bytes, 5_242_880);
        assert_eq!(l.tool_timeout_ms, 30_000);
        assert_eq!(l.heartbeat_interval_ms, 15_000);
        assert_eq!(l.deadline_ms, 0);
        assert_eq!(l.per_tool_deadline_ms, 30_000);
        assert!(!l.cancel_on_first_error);
    }

    #[test]
    fn given_keys_override_and_aliases_apply() {
        let l = SessionLimits::resolve(&PartialLimits {
            max_tool_calls: Some(2.0),
            timeout: Some(300.0),
            deadline_ms: Some(f64::INFINITY),
            memory_limit: Some(64.0 * 1024.0 * 1024.0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(l.max_tool_calls, 2);
        assert_eq!(l.tool_timeout_ms, 300);
        assert_eq!(l.deadline_ms, u64::MAX);
        assert_eq!(l.memory_limit_bytes, Some(64 * 1024 * 1024));
        let l = SessionLimits::resolve(&PartialLimits {
            tool_timeout_ms: Some(0.5),
            max_tool_calls: Some(2.5),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((l.tool_timeout_ms, l.max_tool_calls), (1, 2));
        // The real key wins over the seed alias.
        let l = SessionLimits::resolve(&PartialLimits {
            tool_timeout_ms: Some(10.0),
            timeout: Some(300.0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(l.tool_timeout_ms, 10);
    }

    #[test]
    fn negative_and_nan_are_rejected_with_a_clear_message() {
        let err = SessionLimits::resolve(&PartialLimits { max_tool_calls: Some(-1.0), ..Default::default() })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid session limit \"maxToolCalls\": expected a non-negative number, got -1"
        );
        let err =
            SessionLimits::resolve(&PartialLimits { deadline_ms: Some(f64::NAN), ..Default::default() })
                .unwrap_err();
        assert_eq!(err.key, "deadlineMs");
        assert_eq!(err.expected, "a non-negative number");
        assert!(err.to_string().ends_with("got NaN"));
    }

    #[test]
    fn inputs_are_checked_by_kind_with_the_value_as_given() {
        let ok = PartialLimits::from_inputs([
            ("maxToolCalls", LimitInput::Number(3.0)),
            ("cancelOnFirstError", LimitInput::Bool(true)),
            ("deadlineMs", LimitInput::Number(f64::INFINITY)),
            ("unknownKey", LimitInput::Other("ignored".into())),
        ])
        .unwrap();
        assert_eq!(ok.max_tool_calls, Some(3.0));
        assert_eq!(ok.cancel_on_first_error, Some(true));
        assert_eq!(ok.deadline_ms, Some(f64::INFINITY));
        let message =
            |key: &'static str, input| PartialLimits::from_inputs([(key, input)]).unwrap_err().to_string();
        assert_eq!(
            message("timeout", LimitInput::Other("\"soon\"".into())),
            "Invalid session limit \"timeout\": expected a non-negative number, got \"soon\""
        );
        assert_eq!(
            message("cancelOnFirstError", LimitInput::Number(1.0)),
            "Invalid session limit \"cancelOnFirstError\": expected a boolean, got 1"
        );
        assert_eq!(
            message("maxToolCalls", LimitInput::Number(f64::NEG_INFINITY)),
            "Invalid session limit \"maxToolCalls\": expected a non-negative number, got -Infinity"
        );
        assert_eq!(
            message("sessionTtlMs", LimitInput::Bool(false)),
            "Invalid session limit \"sessionTtlMs\": expected a non-negative number, got false"
        );
    }
}
