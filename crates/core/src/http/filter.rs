//! Event filters on the HTTP routes: the core's filter (`crate::filter`, the original's
//! `EventFilterConfig` semantics, the same the JavaScript `EventFilter` uses) within the
//! bounds a server needs for client input. A filter is at most `MAX_FILTER_BYTES` of JSON
//! with at most `MAX_FILTER_PATTERNS` content patterns (`400 FILTER_TOO_LARGE`); one the
//! original's constructor refuses is invalid (`may_throw` tells of one that would throw
//! while testing events; `rules.rs` decides who takes those, and who takes filters past the
//! caps). Each event is read once for all of a filter's patterns (the whole payload is the
//! event's own JSON, never re-serialised); filters that look at content run off the
//! request-serving threads (see `stream`).

use serde_json::Value;

use crate::filter::{self, FilterEvent};
use crate::protocol::{EventType, StreamEvent};

/// The most JSON one filter may take.
pub const MAX_FILTER_BYTES: usize = 16 * 1024;
/// The most content patterns one filter may have, over all its rules.
pub const MAX_FILTER_PATTERNS: usize = 64;

/// Why a filter configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterError {
    Invalid(String),
    /// Past `MAX_FILTER_BYTES` or `MAX_FILTER_PATTERNS` (`400 FILTER_TOO_LARGE`).
    TooLarge(String),
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterError::Invalid(message) | FilterError::TooLarge(message) => f.write_str(message),
        }
    }
}

impl FilterEvent for StreamEvent {
    fn kind(&self) -> Option<&str> {
        Some(StreamEvent::kind(self).as_str())
    }
    fn json(&self) -> &str {
        StreamEvent::json(self)
    }
    fn payload_json(&self) -> Option<&str> {
        Some(StreamEvent::payload_json(self))
    }
}

#[derive(Debug)]
pub struct EventFilter {
    filter: filter::EventFilter,
}

impl EventFilter {
    /// Builds a filter from an `EventFilterConfig` JSON value, within the server's caps.
    pub fn from_config(config: &Value) -> Result<EventFilter, FilterError> {
        let size = config.to_string().len();
        if size > MAX_FILTER_BYTES {
            return Err(FilterError::TooLarge(format!(
                "filter is {size} bytes of JSON; the limit is {MAX_FILTER_BYTES}"
            )));
        }
        let patterns: usize = config["rules"]
            .as_array()
            .map(|rules| {
                rules.iter().filter_map(|rule| rule["content"]["patterns"].as_array()).map(Vec::len).sum()
            })
            .unwrap_or(0);
        if patterns > MAX_FILTER_PATTERNS {
            return Err(FilterError::TooLarge(format!(
                "filter has {patterns} content patterns; the limit is {MAX_FILTER_PATTERNS}"
            )));
        }
        EventFilter::uncapped(config)
    }

    /// Builds a filter from an `EventFilterConfig` JSON value of any size (the original's
    /// SessionHandler takes any filter its `EventFilter` constructor takes).
    pub fn uncapped(config: &Value) -> Result<EventFilter, FilterError> {
        let filter = filter::EventFilter::compile(config).map_err(FilterError::Invalid)?;
        Ok(EventFilter { filter })
    }

    /// The seed API's `{types?, blockedTypes?}` filter of `POST /execute`: an include filter
    /// of `types` and an exclude filter of `blockedTypes`.
    pub fn from_type_lists(
        types: Option<Vec<EventType>>,
        blocked: Option<Vec<EventType>>,
    ) -> Vec<EventFilter> {
        let by_types = |mode: &str, types: Vec<EventType>| {
            let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            let config = serde_json::json!({"mode": mode, "rules": [{"types": {"types": names}}]});
            EventFilter { filter: filter::EventFilter::compile(&config).expect("a type filter compiles") }
        };
        types
            .map(|t| by_types("include", t))
            .into_iter()
            .chain(blocked.map(|b| by_types("exclude", b)))
            .collect()
    }

    /// The `TypeError` text testing some event would throw, if any (`rules: 'x'`).
    pub fn may_throw(&self) -> Option<&str> {
        self.filter.may_throw()
    }

    /// The core filter, for callers that test events themselves (the JavaScript `EventFilter`).
    pub fn into_core(self) -> filter::EventFilter {
        self.filter
    }

    /// Whether the filter reads event content (the costly kind, run off the serving threads).
    pub fn reads_content(&self) -> bool {
        self.filter.reads_content()
    }

    pub fn should_send(&self, event: &StreamEvent) -> bool {
        self.filter.should_send(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::event::payload;

    fn event(kind: EventType, payload: &str) -> StreamEvent {
        StreamEvent::new("s_1", 1, kind, payload)
    }

    fn filter(config: &str) -> EventFilter {
        EventFilter::from_config(&serde_json::from_str(config).unwrap()).unwrap()
    }

    #[test]
    fn include_types_keeps_always_allowed_events() {
        let f = filter(r#"{"mode":"include","rules":[{"types":{"types":["tool_call"]}}]}"#);
        assert!(f.should_send(&event(EventType::ToolCall, &payload::tool_call("c", "t", "{}"))));
        assert!(!f.should_send(&event(EventType::Heartbeat, &payload::heartbeat("x"))));
        assert!(f.should_send(&event(EventType::Final, "{}")));
        let empty = filter(r#"{"mode":"include","rules":[]}"#);
        assert!(!empty.should_send(&event(EventType::Stdout, &payload::stdout("x"))));
        assert!(empty.should_send(&event(EventType::SessionInit, "{}")));
    }

    #[test]
    fn content_patterns_match_fields_from_the_event_root() {
        let f = filter(
            r#"{"mode":"exclude","rules":[{"content":{"patterns":[{"type":"regex","pattern":"^secret","field":"payload.chunk","caseInsensitive":true}]}}]}"#,
        );
        assert!(!f.should_send(&event(EventType::Stdout, &payload::stdout("SECRET token"))));
        assert!(f.should_send(&event(EventType::Stdout, &payload::stdout("public"))));
        let g = filter(
            r#"{"mode":"include","rules":[{"content":{"patterns":[{"type":"glob","pattern":"users:*","field":"payload.toolName"},{"type":"prefix","pattern":"tool","field":"type"}],"match":"all"}}]}"#,
        );
        assert!(g.should_send(&event(EventType::ToolCall, &payload::tool_call("c", "users:list", "{}"))));
        assert!(!g.should_send(&event(EventType::ToolCall, &payload::tool_call("c", "users:a/b", "{}"))));
        assert!(!g.should_send(&event(EventType::ToolCall, &payload::tool_call("c", "mail:send", "{}"))));
    }

    #[test]
    fn catastrophic_patterns_end_and_configs_the_original_refuses_are_invalid() {
        let f = filter(
            r#"{"mode":"include","rules":[{"content":{"patterns":[{"type":"regex","pattern":"(a+)+$"}]}}]}"#,
        );
        let long = format!("{{\"chunk\":\"{}b\"}}", "a".repeat(5000));
        assert!(!f.should_send(&event(EventType::Stdout, &long)));
        for throws in [r#"{"mode":"include","rules":"x"}"#, r#"{"mode":"include","rules":[{"types":{}}]}"#] {
            assert!(filter(throws).may_throw().is_some(), "{throws}");
        }
        for bad in
            [r#"{"mode":"include"}"#, r#"{"mode":"include","rules":[{"content":{"patterns":{}}}]}"#, "null"]
        {
            assert!(
                matches!(
                    EventFilter::from_config(&serde_json::from_str(bad).unwrap()),
                    Err(FilterError::Invalid(_))
                ),
                "{bad}"
            );
        }
        // What the original accepts is accepted: any other mode excludes, an unknown type
        // or an invalid regex never matches.
        let sideways = filter(r#"{"mode":"sideways","rules":[{"types":{"types":["nope","stdout"]}}]}"#);
        assert!(!sideways.should_send(&event(EventType::Stdout, &payload::stdout("x"))));
        assert!(sideways.should_send(&event(EventType::Heartbeat, &payload::heartbeat("x"))));
        let invalid = filter(
            r#"{"mode":"include","rules":[{"content":{"patterns":[{"type":"regex","pattern":"("}]}}]}"#,
        );
        assert!(!invalid.should_send(&event(EventType::Stdout, &payload::stdout("("))));
    }

    #[test]
    fn filters_past_their_caps_are_refused_as_too_large() {
        let patterns = |n: usize| {
            let list: Vec<String> =
                (0..n).map(|i| format!(r#"{{"type":"exact","pattern":"p{i}"}}"#)).collect();
            format!(r#"{{"mode":"include","rules":[{{"content":{{"patterns":[{}]}}}}]}}"#, list.join(","))
        };
        let at_cap = EventFilter::from_config(&serde_json::from_str(&patterns(MAX_FILTER_PATTERNS)).unwrap());
        assert!(at_cap.is_ok());
        let over =
            EventFilter::from_config(&serde_json::from_str(&patterns(MAX_FILTER_PATTERNS + 1)).unwrap());
        assert!(matches!(over, Err(FilterError::TooLarge(m)) if m.contains("65 content patterns")));
        let long = format!(
            r#"{{"mode":"include","rules":[{{"content":{{"patterns":[{{"type":"exact","pattern":"{}"}}]}}}}]}}"#,
            "x".repeat(MAX_FILTER_BYTES)
        );
        assert!(matches!(
            EventFilter::from_config(&serde_json::from_str(&long).unwrap()),
            Err(FilterError::TooLarge(_))
        ));
    }

    #[test]
    fn the_whole_payload_is_matched_as_its_json() {
        let f = filter(
            r#"{"mode":"include","rules":[{"content":{"patterns":[{"type":"glob","pattern":"*TOKEN*","caseInsensitive":true},{"type":"exact","pattern":"{\"chunk\":\"x\"}"}]}}]}"#,
        );
        assert!(f.should_send(&event(EventType::Stdout, &payload::stdout("a token here"))));
        assert!(f.should_send(&event(EventType::Stdout, "{\"chunk\":\"x\"}")));
        assert!(!f.should_send(&event(EventType::Stdout, &payload::stdout("nothing"))));
        let missing = filter(
            r#"{"mode":"include","rules":[{"content":{"patterns":[{"type":"prefix","pattern":"","field":"payload.nope"}]}}]}"#,
        );
        assert!(!missing.should_send(&event(EventType::Stdout, &payload::stdout("x"))));
    }
}
