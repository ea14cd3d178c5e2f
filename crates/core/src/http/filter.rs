//! Server-side event filters for HTTP streams, with the original's `EventFilterConfig`
//! shape and semantics (contract 1.O): `alwaysAllow` first, then rules (a rule matches
//! when all of its parts match; an empty rule matches everything), then include/exclude.
//!
//! Regex patterns use Rust's linear-time engine: no pattern can backtrack
//! catastrophically, so the original's ReDoS heuristics are not needed here. As in the
//! original, inputs over 10,000 characters never match a regex pattern.

use globset::{GlobBuilder, GlobMatcher};
use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::protocol::{EventType, StreamEvent};

const MAX_REGEX_INPUT_LENGTH: usize = 10_000;
const MAX_PATTERN_LENGTH: usize = 10_000;
const DEFAULT_ALWAYS_ALLOW: [EventType; 2] = [EventType::SessionInit, EventType::Final];

#[derive(Debug)]
enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(Regex),
    Glob(GlobMatcher),
}

#[derive(Debug)]
struct ContentPattern {
    field: Option<Vec<String>>,
    case_insensitive: bool,
    matcher: Matcher,
}

#[derive(Debug)]
struct Rule {
    types: Option<Vec<EventType>>,
    patterns: Option<(Vec<ContentPattern>, bool)>,
}

#[derive(Debug)]
pub struct EventFilter {
    include: bool,
    rules: Vec<Rule>,
    always_allow: Vec<EventType>,
}

fn invalid(message: impl Into<String>) -> String {
    message.into()
}

fn event_types(value: &Value, what: &str) -> Result<Vec<EventType>, String> {
    let list = value.as_array().ok_or_else(|| invalid(format!("{what} must be an array of event types")))?;
    list.iter()
        .map(|t| {
            t.as_str()
                .and_then(EventType::parse)
                .ok_or_else(|| invalid(format!("{what} contains an unknown event type: {t}")))
        })
        .collect()
}

fn pattern(value: &Value) -> Result<ContentPattern, String> {
    let kind = value["type"].as_str().ok_or_else(|| invalid("content pattern needs a type"))?;
    let text = value["pattern"].as_str().ok_or_else(|| invalid("content pattern needs a string pattern"))?;
    if text.len() > MAX_PATTERN_LENGTH {
        return Err(invalid("content pattern is too long"));
    }
    let case_insensitive = value["caseInsensitive"].as_bool().unwrap_or(false);
    let field = match &value["field"] {
        Value::Null => None,
        Value::String(f) => Some(f.split('.').map(str::to_string).collect()),
        _ => return Err(invalid("content pattern field must be a string")),
    };
    let fold = |s: &str| if case_insensitive { s.to_lowercase() } else { s.to_string() };
    let matcher = match kind {
        "exact" => Matcher::Exact(fold(text)),
        "prefix" => Matcher::Prefix(fold(text)),
        "regex" => Matcher::Regex(
            RegexBuilder::new(text)
                .case_insensitive(case_insensitive)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| invalid(format!("invalid regex pattern {text:?}: {e}")))?,
        ),
        "glob" => Matcher::Glob(
            GlobBuilder::new(text)
                .case_insensitive(case_insensitive)
                .literal_separator(true)
                .build()
                .map_err(|e| invalid(format!("invalid glob pattern {text:?}: {e}")))?
                .compile_matcher(),
        ),
        other => return Err(invalid(format!("unknown content pattern type {other:?}"))),
    };
    Ok(ContentPattern { field, case_insensitive, matcher })
}

impl EventFilter {
    /// Builds a filter from an `EventFilterConfig` JSON value.
    pub fn from_config(config: &Value) -> Result<EventFilter, String> {
        let include = match config["mode"].as_str() {
            Some("include") => true,
            Some("exclude") => false,
            _ => return Err(invalid("filter mode must be 'include' or 'exclude'")),
        };
        let rules_json =
            config["rules"].as_array().ok_or_else(|| invalid("filter rules must be an array"))?;
        let mut rules = Vec::with_capacity(rules_json.len());
        for rule in rules_json {
            if !rule.is_object() {
                return Err(invalid("each filter rule must be an object"));
            }
            let types = match &rule["types"] {
                Value::Null => None,
                t => Some(event_types(&t["types"], "rule.types.types")?),
            };
            let patterns = match &rule["content"] {
                Value::Null => None,
                c => {
                    let list = c["patterns"]
                        .as_array()
                        .ok_or_else(|| invalid("rule.content.patterns must be an array"))?;
                    let all = c["match"].as_str() == Some("all");
                    Some((list.iter().map(pattern).collect::<Result<Vec<_>, _>>()?, all))
                }
            };
            rules.push(Rule { types, patterns });
        }
        let always_allow = match &config["alwaysAllow"] {
            Value::Null => DEFAULT_ALWAYS_ALLOW.to_vec(),
            list => event_types(list, "alwaysAllow")?,
        };
        Ok(EventFilter { include, rules, always_allow })
    }

    /// The seed API's `{types?, blockedTypes?}` filter of `POST /execute`.
    pub fn from_type_lists(
        types: Option<Vec<EventType>>,
        blocked: Option<Vec<EventType>>,
    ) -> Vec<EventFilter> {
        let mut filters = Vec::new();
        if let Some(types) = types {
            filters.push(EventFilter {
                include: true,
                rules: vec![Rule { types: Some(types), patterns: None }],
                always_allow: DEFAULT_ALWAYS_ALLOW.to_vec(),
            });
        }
        if let Some(blocked) = blocked {
            filters.push(EventFilter {
                include: false,
                rules: vec![Rule { types: Some(blocked), patterns: None }],
                always_allow: DEFAULT_ALWAYS_ALLOW.to_vec(),
            });
        }
        filters
    }

    pub fn should_send(&self, event: &StreamEvent) -> bool {
        if self.always_allow.contains(&event.kind()) {
            return true;
        }
        let mut root: Option<Value> = None;
        let matches = self.rules.iter().any(|rule| {
            if rule.types.as_ref().is_some_and(|types| !types.contains(&event.kind())) {
                return false;
            }
            match &rule.patterns {
                None => true,
                Some((patterns, all)) => {
                    let root =
                        root.get_or_insert_with(|| serde_json::from_str(event.json()).unwrap_or(Value::Null));
                    let mut results = patterns.iter().map(|p| p.matches(root));
                    if *all { results.all(|m| m) } else { results.any(|m| m) }
                }
            }
        });
        if self.include { matches } else { !matches }
    }
}

impl ContentPattern {
    fn matches(&self, root: &Value) -> bool {
        let value = match &self.field {
            None => &root["payload"],
            Some(path) => {
                let mut current = root;
                for key in path {
                    match current.get(key.as_str()) {
                        Some(next) => current = next,
                        None => return false,
                    }
                }
                current
            }
        };
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let text = if self.case_insensitive && !matches!(self.matcher, Matcher::Regex(_)) {
            text.to_lowercase()
        } else {
            text
        };
        match &self.matcher {
            Matcher::Exact(p) => text == *p,
            Matcher::Prefix(p) => text.starts_with(p.as_str()),
            Matcher::Regex(r) => text.chars().count() <= MAX_REGEX_INPUT_LENGTH && r.is_match(&text),
            Matcher::Glob(g) => g.is_match(&text),
        }
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
    fn catastrophic_patterns_run_in_linear_time_and_bad_configs_are_rejected() {
        let f = filter(
            r#"{"mode":"include","rules":[{"content":{"patterns":[{"type":"regex","pattern":"(a+)+$"}]}}]}"#,
        );
        let long = format!("{{\"chunk\":\"{}b\"}}", "a".repeat(5000));
        assert!(!f.should_send(&event(EventType::Stdout, &long)));
        for bad in [
            r#"{"mode":"sideways","rules":[]}"#,
            r#"{"mode":"include"}"#,
            r#"{"mode":"include","rules":[{"types":{"types":["nope"]}}]}"#,
            r#"{"mode":"include","rules":[{"content":{"patterns":[{"type":"regex","pattern":"("}]}}]}"#,
        ] {
            assert!(EventFilter::from_config(&serde_json::from_str(bad).unwrap()).is_err(), "{bad}");
        }
    }
}
