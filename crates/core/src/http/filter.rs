//! Server-side event filters for HTTP streams, with the original's `EventFilterConfig`
//! shape and semantics (1.O in docs/compatibility.md): `alwaysAllow` first, then rules (a rule matches
//! when all of its parts match; an empty rule matches everything), then include/exclude.
//!
//! Regex patterns use Rust's linear-time engine: no pattern can backtrack
//! catastrophically, so the original's ReDoS heuristics are not needed here. As in the
//! original, inputs over 10,000 characters never match a regex pattern.
//!
//! A filter is bounded (`MAX_FILTER_BYTES`, `MAX_FILTER_PATTERNS`) and each event is read
//! once for all of a filter's patterns: the text of each distinct field is made once per
//! event (the whole payload is the event's own JSON, never re-serialised), and so is its
//! lower-case form. Filters that look at content run off the request-serving threads
//! (see `stream`).
use std::cell::OnceCell;

use globset::{GlobBuilder, GlobMatcher};
use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::protocol::{EventType, StreamEvent};

const MAX_REGEX_INPUT_LENGTH: usize = 10_000;
const MAX_PATTERN_LENGTH: usize = 10_000;
/// The most JSON one filter may take.
pub const MAX_FILTER_BYTES: usize = 16 * 1024;
/// The most content patterns one filter may have, over all its rules.
pub const MAX_FILTER_PATTERNS: usize = 64;
const DEFAULT_ALWAYS_ALLOW: [EventType; 2] = [EventType::SessionInit, EventType::Final];

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

#[derive(Debug)]
enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(Regex),
    Glob(GlobMatcher),
}

#[derive(Debug)]
struct ContentPattern {
    /// Index of its field in the filter's `fields`.
    field: usize,
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
    /// The distinct fields the patterns read (`None`: the payload).
    fields: Vec<Option<Vec<String>>>,
}

fn invalid(message: impl Into<String>) -> FilterError {
    FilterError::Invalid(message.into())
}

/// Distinct types: a list of thousands of repeats costs one comparison per type.
fn distinct(mut types: Vec<EventType>) -> Vec<EventType> {
    let mut seen = Vec::with_capacity(types.len().min(EventType::ALL.len()));
    types.retain(|t| {
        let new = !seen.contains(t);
        if new {
            seen.push(*t);
        }
        new
    });
    types
}

fn event_types(value: &Value, what: &str) -> Result<Vec<EventType>, FilterError> {
    let list = value.as_array().ok_or_else(|| invalid(format!("{what} must be an array of event types")))?;
    list.iter()
        .map(|t| {
            t.as_str()
                .and_then(EventType::parse)
                .ok_or_else(|| invalid(format!("{what} contains an unknown event type: {t}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(distinct)
}

fn pattern(value: &Value, fields: &mut Vec<Option<Vec<String>>>) -> Result<ContentPattern, FilterError> {
    let kind = value["type"].as_str().ok_or_else(|| invalid("content pattern needs a type"))?;
    let text = value["pattern"].as_str().ok_or_else(|| invalid("content pattern needs a string pattern"))?;
    if text.len() > MAX_PATTERN_LENGTH {
        return Err(invalid("content pattern is too long"));
    }
    let case_insensitive = value["caseInsensitive"].as_bool().unwrap_or(false);
    let field = match &value["field"] {
        Value::Null => None,
        Value::String(f) => Some(f.split('.').map(str::to_string).collect::<Vec<_>>()),
        _ => return Err(invalid("content pattern field must be a string")),
    };
    let field = match fields.iter().position(|f| *f == field) {
        Some(index) => index,
        None => {
            fields.push(field);
            fields.len() - 1
        }
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

/// One field of one event, made at most once whatever the number of patterns reading it.
struct FieldText<'e> {
    text: std::borrow::Cow<'e, str>,
    lower: OnceCell<String>,
    chars: OnceCell<usize>,
}

/// An event as the patterns of one filter read it.
struct EventView<'e> {
    event: &'e StreamEvent,
    root: OnceCell<Value>,
    texts: Vec<OnceCell<Option<FieldText<'e>>>>,
}

impl<'e> EventView<'e> {
    fn new(event: &'e StreamEvent, fields: usize) -> Self {
        EventView { event, root: OnceCell::new(), texts: (0..fields).map(|_| OnceCell::new()).collect() }
    }

    /// The text of field `index` (`path`), or None when the event has no such field.
    fn text(&self, index: usize, path: &Option<Vec<String>>) -> Option<&FieldText<'e>> {
        self.texts[index]
            .get_or_init(|| {
                let text = match path {
                    // The payload's JSON as the event carries it (what JSON.stringify gives).
                    None => std::borrow::Cow::Borrowed(self.event.payload_json()),
                    Some(path) => {
                        let root = self
                            .root
                            .get_or_init(|| serde_json::from_str(self.event.json()).unwrap_or(Value::Null));
                        let mut current = root;
                        for key in path {
                            current = current.get(key.as_str())?;
                        }
                        std::borrow::Cow::Owned(match current {
                            Value::String(s) => s.clone(),
                            Value::Null => String::new(),
                            other => other.to_string(),
                        })
                    }
                };
                Some(FieldText { text, lower: OnceCell::new(), chars: OnceCell::new() })
            })
            .as_ref()
    }
}

impl EventFilter {
    /// Builds a filter from an `EventFilterConfig` JSON value.
    pub fn from_config(config: &Value) -> Result<EventFilter, FilterError> {
        let size = config.to_string().len();
        if size > MAX_FILTER_BYTES {
            return Err(FilterError::TooLarge(format!(
                "filter is {size} bytes of JSON; the limit is {MAX_FILTER_BYTES}"
            )));
        }
        let include = match config["mode"].as_str() {
            Some("include") => true,
            Some("exclude") => false,
            _ => return Err(invalid("filter mode must be 'include' or 'exclude'")),
        };
        let rules_json =
            config["rules"].as_array().ok_or_else(|| invalid("filter rules must be an array"))?;
        let patterns: usize =
            rules_json.iter().filter_map(|rule| rule["content"]["patterns"].as_array()).map(Vec::len).sum();
        if patterns > MAX_FILTER_PATTERNS {
            return Err(FilterError::TooLarge(format!(
                "filter has {patterns} content patterns; the limit is {MAX_FILTER_PATTERNS}"
            )));
        }
        let mut fields = Vec::new();
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
                    let list = list.iter().map(|p| pattern(p, &mut fields)).collect::<Result<Vec<_>, _>>()?;
                    Some((list, all))
                }
            };
            rules.push(Rule { types, patterns });
        }
        let always_allow = match &config["alwaysAllow"] {
            Value::Null => DEFAULT_ALWAYS_ALLOW.to_vec(),
            list => event_types(list, "alwaysAllow")?,
        };
        Ok(EventFilter { include, rules, always_allow, fields })
    }

    /// The seed API's `{types?, blockedTypes?}` filter of `POST /execute`.
    pub fn from_type_lists(
        types: Option<Vec<EventType>>,
        blocked: Option<Vec<EventType>>,
    ) -> Vec<EventFilter> {
        let by_types = |include: bool, types: Vec<EventType>| EventFilter {
            include,
            rules: vec![Rule { types: Some(distinct(types)), patterns: None }],
            always_allow: DEFAULT_ALWAYS_ALLOW.to_vec(),
            fields: Vec::new(),
        };
        types.map(|t| by_types(true, t)).into_iter().chain(blocked.map(|b| by_types(false, b))).collect()
    }

    /// Whether the filter reads event content (the costly kind, run off the serving threads).
    pub fn reads_content(&self) -> bool {
        !self.fields.is_empty()
    }

    pub fn should_send(&self, event: &StreamEvent) -> bool {
        if self.always_allow.contains(&event.kind()) {
            return true;
        }
        let view = EventView::new(event, self.fields.len());
        let matches = self.rules.iter().any(|rule| {
            if rule.types.as_ref().is_some_and(|types| !types.contains(&event.kind())) {
                return false;
            }
            match &rule.patterns {
                None => true,
                Some((patterns, all)) => {
                    let mut results = patterns.iter().map(|p| p.matches(&view, &self.fields[p.field]));
                    if *all { results.all(|m| m) } else { results.any(|m| m) }
                }
            }
        });
        if self.include { matches } else { !matches }
    }
}

impl ContentPattern {
    fn matches(&self, view: &EventView<'_>, path: &Option<Vec<String>>) -> bool {
        let Some(field) = view.text(self.field, path) else { return false };
        let text: &str = if self.case_insensitive && !matches!(self.matcher, Matcher::Regex(_)) {
            field.lower.get_or_init(|| field.text.to_lowercase())
        } else {
            &field.text
        };
        match &self.matcher {
            Matcher::Exact(p) => text == p,
            Matcher::Prefix(p) => text.starts_with(p.as_str()),
            Matcher::Regex(r) => {
                let chars = *field.chars.get_or_init(|| field.text.chars().count());
                chars <= MAX_REGEX_INPUT_LENGTH && r.is_match(text)
            }
            Matcher::Glob(g) => g.is_match(text),
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
