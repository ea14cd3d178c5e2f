//! The original's `EventFilter` (docs/compatibility.md, 1.O): `alwaysAllow` first, then
//! the rules (a rule matches when its types and its content both match; an empty rule
//! matches everything; rules are ORed), then `mode` (`'include'` sends matches, any other
//! mode sends the rest). Content patterns read a dot-path `field` of the event (the
//! payload without one) and are `exact`, `prefix`, `regex` (`content_regex.rs`) or `glob`
//! (`glob.rs`); `caseInsensitive` lowercases both sides.
//!
//! The original is JavaScript, and configs are client input, so the places where it throws
//! are part of its behaviour: a config it cannot start from is refused with its
//! `TypeError`'s text (`compile`); one that throws when an event is tested (say `rules: 'x'`)
//! reports that text as `Verdict::Thrown`; a pattern that fails while matching (a glob that
//! is not a string) counts as no match and is reported to the caller's `on_error`, as the
//! original's `onError(error, event)`. What the original printed while compiling (a
//! vulnerable or invalid regex) is kept as `notices`.
//!
//! Each event is read once for all patterns: the text of each distinct field is made once
//! per event (`EventText`), and so is its lower-case form.

use std::borrow::Cow;
use std::cell::OnceCell;

use serde_json::Value;

use super::content_regex::{ContentRegex, is_potentially_vulnerable, vulnerable_warning};
use super::field::{field_text, value_text};
use super::glob::Glob;
use super::js::{IterItem, iterable, js_string, read_error, type_of};

/// The types `alwaysAllow` has when a config does not say.
pub const DEFAULT_ALWAYS_ALLOW: [&str; 2] = ["session_init", "final"];

/// What compiling a filter printed in the original: a warning about a regex its heuristics
/// flag, or an invalid regex (`console.error('Invalid regex pattern: …', SyntaxError)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    VulnerableRegex { pattern: String, message: String },
    InvalidRegex { pattern: String, syntax_error: String },
}

/// The answer for one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send(bool),
    /// The original throws a `TypeError` with this text for this event.
    Thrown(String),
}

/// An event as a filter reads it: its type, and its JSON text for content patterns.
pub trait FilterEvent {
    /// `event.type`, when it is a string.
    fn kind(&self) -> Option<&str>;
    /// The event's JSON.
    fn json(&self) -> &str;
    /// The payload's JSON, when the event has it at hand.
    fn payload_json(&self) -> Option<&str> {
        None
    }
}

/// An event given as its type and JSON text.
pub struct JsonEvent<'e> {
    pub kind: Option<&'e str>,
    pub json: &'e str,
}

impl FilterEvent for JsonEvent<'_> {
    fn kind(&self) -> Option<&str> {
        self.kind
    }
    fn json(&self) -> &str {
        self.json
    }
}

/// `filter.types.includes(event.type)`, as the original evaluates it.
#[derive(Debug)]
enum Types {
    List(Vec<String>),
    /// A string: `includes` is a substring test.
    Text(String),
    Thrown(String),
}

#[derive(Debug)]
enum Kind {
    Exact(Option<String>),
    /// `startsWith(String(pattern))`.
    Prefix(String),
    /// An index into `EventFilter::regexes`, None when the pattern did not compile.
    Regex(Option<usize>),
    Glob(Result<Glob, &'static str>),
    Unknown,
}

#[derive(Debug)]
struct Pattern {
    /// Index of its field in `EventFilter::fields`; Err: reading the field throws.
    field: Result<usize, String>,
    case_insensitive: bool,
    /// Lowercasing a pattern that is not a string throws (once the field has a value).
    lowercase_error: Option<String>,
    kind: Kind,
}

#[derive(Debug)]
enum Content {
    Patterns { patterns: Vec<Pattern>, all: bool },
    Thrown(String),
}

#[derive(Debug)]
struct Rule {
    types: Option<Types>,
    content: Option<Content>,
}

#[derive(Debug)]
pub struct EventFilter {
    include: bool,
    always_allow: Vec<String>,
    /// Err: testing an event throws this (after `alwaysAllow`).
    rules: Result<Vec<Rule>, String>,
    /// The distinct fields the patterns read (`None`: the payload).
    fields: Vec<Option<Vec<String>>>,
    /// Compiled regexes by the original's cache key (`pattern:i`), in first-use order.
    regexes: Vec<(String, ContentRegex)>,
    notices: Vec<Notice>,
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn get<'v>(value: Option<&'v Value>, key: &str) -> Option<&'v Value> {
    value.and_then(|v| v.get(key))
}

/// `for (const x of value)` over a list of event types, as `new Set(...)` takes it.
fn type_strings(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::Array(items) => Ok(items.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        Value::String(s) => Ok(s.chars().map(String::from).collect()),
        Value::Object(_) => {
            Err("object is not iterable (cannot read property Symbol(Symbol.iterator))".into())
        }
        other => Err(format!(
            "{} {} is not iterable (cannot read property Symbol(Symbol.iterator))",
            type_of(Some(other)),
            js_string(Some(other))
        )),
    }
}

impl EventFilter {
    /// The filter for an `EventFilterConfig`, or the text of the `TypeError` the original's
    /// constructor throws for it.
    pub fn compile(config: &Value) -> Result<EventFilter, String> {
        if matches!(config, Value::Null) {
            return Err(read_error("options.config", Some(config), "alwaysAllow"));
        }
        let always_allow = match config.get("alwaysAllow") {
            None | Some(Value::Null) => DEFAULT_ALWAYS_ALLOW.iter().map(|t| t.to_string()).collect(),
            Some(list) => type_strings(list)?,
        };
        let include = config.get("mode").and_then(Value::as_str) == Some("include");
        let mut filter = EventFilter {
            include,
            always_allow,
            rules: Ok(Vec::new()),
            fields: Vec::new(),
            regexes: Vec::new(),
            notices: Vec::new(),
        };
        let items = iterable("this.config.rules", config.get("rules"))?;
        filter.compile_regexes(&items)?;
        filter.rules = match config.get("rules") {
            Some(Value::Array(rules)) => Ok(rules.iter().map(|rule| filter.rule(rule)).collect()),
            _ => Err("this.config.rules.some is not a function".into()),
        };
        Ok(filter)
    }

    /// The original's constructor pass over the regex patterns: one compile (with its
    /// warning or error) per pattern and case flag. It is also where a config that cannot
    /// be walked throws.
    fn compile_regexes(&mut self, rules: &[IterItem<'_>]) -> Result<(), String> {
        for rule in rules {
            let rule = rule.value();
            if let Some(Value::Null) = rule {
                return Err(read_error("rule", rule, "content"));
            }
            let patterns = get(get(rule, "content"), "patterns");
            if !truthy(patterns) {
                continue;
            }
            for pattern in iterable("rule.content.patterns", patterns)? {
                let pattern = pattern.value();
                if matches!(pattern, Some(Value::Null)) {
                    return Err(read_error("pattern", pattern, "type"));
                }
                if get(pattern, "type").and_then(Value::as_str) != Some("regex") {
                    continue;
                }
                let text = js_string(get(pattern, "pattern"));
                let case_insensitive = truthy(get(pattern, "caseInsensitive"));
                let key = regex_key(&text, case_insensitive);
                if self.regexes.iter().any(|(k, _)| *k == key) {
                    continue;
                }
                if is_potentially_vulnerable(&text) {
                    self.notices.push(Notice::VulnerableRegex {
                        message: vulnerable_warning(&text),
                        pattern: text.clone(),
                    });
                }
                match ContentRegex::compile(&text, case_insensitive) {
                    Ok(regex) => self.regexes.push((key, regex)),
                    Err(syntax_error) => {
                        self.notices.push(Notice::InvalidRegex { pattern: text, syntax_error })
                    }
                }
            }
        }
        Ok(())
    }

    fn rule(&mut self, rule: &Value) -> Rule {
        let rule = Some(rule);
        let types = truthy(get(rule, "types")).then(|| {
            let list = get(get(rule, "types"), "types");
            match list {
                Some(Value::Array(items)) => {
                    Types::List(items.iter().filter_map(Value::as_str).map(str::to_string).collect())
                }
                Some(Value::String(s)) => Types::Text(s.clone()),
                other => Types::Thrown(read_error("filter.types", other, "includes")),
            }
        });
        let content = truthy(get(rule, "content")).then(|| {
            let content = get(rule, "content");
            let all = get(content, "match").and_then(Value::as_str) == Some("all");
            let method = if all { "every" } else { "some" };
            match get(content, "patterns") {
                Some(Value::Array(patterns)) => {
                    Content::Patterns { patterns: patterns.iter().map(|p| self.pattern(p)).collect(), all }
                }
                other => Content::Thrown(read_error("filter.patterns", other, method)),
            }
        });
        Rule { types, content }
    }

    fn field_index(&mut self, path: Option<Vec<String>>) -> usize {
        match self.fields.iter().position(|f| *f == path) {
            Some(index) => index,
            None => {
                self.fields.push(path);
                self.fields.len() - 1
            }
        }
    }

    fn pattern(&mut self, pattern: &Value) -> Pattern {
        let pattern = Some(pattern);
        let field = match get(pattern, "field") {
            f if !truthy(f) => Ok(self.field_index(None)),
            Some(Value::String(f)) => Ok(self.field_index(Some(f.split('.').map(str::to_string).collect()))),
            _ => Err("field.split is not a function".to_string()),
        };
        let case_insensitive = truthy(get(pattern, "caseInsensitive"));
        let text = get(pattern, "pattern");
        let lowercase_error = match text {
            Some(Value::String(_)) => None,
            _ if case_insensitive => Some(read_error("pattern.pattern", text, "toLowerCase")),
            _ => None,
        };
        let folded = text
            .and_then(Value::as_str)
            .map(|s| if case_insensitive { s.to_lowercase() } else { s.to_string() });
        let kind = match get(pattern, "type").and_then(Value::as_str) {
            Some("exact") => Kind::Exact(folded),
            Some("prefix") => Kind::Prefix(folded.unwrap_or_else(|| js_string(text))),
            Some("regex") => {
                let key = regex_key(&js_string(text), case_insensitive);
                Kind::Regex(self.regexes.iter().position(|(k, _)| *k == key))
            }
            Some("glob") => Kind::Glob(match folded {
                Some(glob) => Glob::new(&glob, case_insensitive).map_err(|e| e.0),
                None => Err("invalid pattern"),
            }),
            _ => Kind::Unknown,
        };
        Pattern { field, case_insensitive, lowercase_error, kind }
    }

    /// Whether the answer depends on the event's type alone (no content patterns, nothing
    /// that can throw): such a filter never reads the JSON.
    pub fn by_type_only(&self) -> bool {
        self.fields.is_empty()
            && self.rules.as_ref().is_ok_and(|rules| {
                rules.iter().all(|r| r.content.is_none() && !matches!(r.types, Some(Types::Thrown(_))))
            })
    }

    /// Whether testing some event can throw (the HTTP server refuses such filters).
    pub fn may_throw(&self) -> Option<&str> {
        let rules = match &self.rules {
            Err(message) => return Some(message),
            Ok(rules) => rules,
        };
        rules.iter().find_map(|rule| {
            if let Some(Types::Thrown(message)) = &rule.types {
                return Some(message.as_str());
            }
            match &rule.content {
                Some(Content::Thrown(message)) => Some(message.as_str()),
                Some(Content::Patterns { patterns, .. }) => patterns.iter().find_map(|p| match &p.field {
                    Err(message) => Some(message.as_str()),
                    Ok(_) => p.lowercase_error.as_deref(),
                }),
                None => None,
            }
        })
    }

    /// Whether the filter reads event content (the costly kind).
    pub fn reads_content(&self) -> bool {
        !self.fields.is_empty()
    }

    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// The compiled regexes by the original's cache key (its `compiledRegexes`).
    pub fn regexes(&self) -> impl Iterator<Item = (&str, &ContentRegex)> {
        self.regexes.iter().map(|(key, regex)| (key.as_str(), regex))
    }

    pub fn regex(&self, index: usize) -> Option<&ContentRegex> {
        self.regexes.get(index).map(|(_, regex)| regex)
    }

    /// The verdict for `event`; errors of single patterns go to `on_error` (as no match).
    pub fn test(&self, event: &dyn FilterEvent, on_error: &mut dyn FnMut(&str)) -> Verdict {
        if event.kind().is_some_and(|kind| self.always_allow.iter().any(|t| t == kind)) {
            return Verdict::Send(true);
        }
        let rules = match &self.rules {
            Ok(rules) => rules,
            Err(message) => return Verdict::Thrown(message.clone()),
        };
        let text = EventText::new(event, self.fields.len());
        let mut matches = false;
        for rule in rules {
            match self.rule_matches(rule, event, &text, on_error) {
                Ok(true) => {
                    matches = true;
                    break;
                }
                Ok(false) => {}
                Err(message) => return Verdict::Thrown(message),
            }
        }
        Verdict::Send(if self.include { matches } else { !matches })
    }

    /// `test` for callers that only need yes or no: a throw sends nothing.
    pub fn should_send(&self, event: &dyn FilterEvent) -> bool {
        matches!(self.test(event, &mut |_| {}), Verdict::Send(true))
    }

    fn rule_matches(
        &self,
        rule: &Rule,
        event: &dyn FilterEvent,
        text: &EventText<'_>,
        on_error: &mut dyn FnMut(&str),
    ) -> Result<bool, String> {
        // Both parts are evaluated, as in the original (content errors are reported even
        // when the type does not match).
        let type_match = match &rule.types {
            None => true,
            Some(Types::List(types)) => event.kind().is_some_and(|kind| types.iter().any(|t| t == kind)),
            Some(Types::Text(s)) => s.contains(event.kind().unwrap_or("undefined")),
            Some(Types::Thrown(message)) => return Err(message.clone()),
        };
        let content_match = match &rule.content {
            None => true,
            Some(Content::Thrown(message)) => return Err(message.clone()),
            Some(Content::Patterns { patterns, all }) => {
                let mut result = *all;
                for pattern in patterns {
                    let matched = self.pattern_matches(pattern, text, on_error)?;
                    if matched != *all {
                        result = matched;
                        break;
                    }
                }
                result
            }
        };
        Ok(type_match && content_match)
    }

    fn pattern_matches(
        &self,
        pattern: &Pattern,
        text: &EventText<'_>,
        on_error: &mut dyn FnMut(&str),
    ) -> Result<bool, String> {
        let field = pattern.field.clone()?;
        let Some(value) = text.field(field, &self.fields[field]) else { return Ok(false) };
        if let Some(message) = &pattern.lowercase_error {
            return Err(message.clone());
        }
        let folded = || -> &str {
            if pattern.case_insensitive {
                value.lower.get_or_init(|| value.text.to_lowercase())
            } else {
                &value.text
            }
        };
        Ok(match &pattern.kind {
            Kind::Exact(expected) => expected.as_deref() == Some(folded()),
            Kind::Prefix(prefix) => folded().starts_with(prefix.as_str()),
            // The original runs the regex (with its `i` flag) on the lowercased value.
            Kind::Regex(index) => index.and_then(|i| self.regex(i)).is_some_and(|regex| regex.test(folded())),
            Kind::Glob(Ok(glob)) => glob.matches(folded()),
            Kind::Glob(Err(message)) => {
                on_error(message);
                false
            }
            Kind::Unknown => false,
        })
    }
}

/// The original's cache key of a regex pattern.
fn regex_key(pattern: &str, case_insensitive: bool) -> String {
    format!("{pattern}:{}", if case_insensitive { "i" } else { "" })
}

/// One field of one event, made at most once whatever the number of patterns reading it.
struct FieldValue<'e> {
    text: Cow<'e, str>,
    lower: OnceCell<String>,
}

/// An event's field texts, each made when first read.
struct EventText<'e> {
    event: &'e dyn FilterEvent,
    texts: Vec<OnceCell<Option<FieldValue<'e>>>>,
}

impl<'e> EventText<'e> {
    fn new(event: &'e dyn FilterEvent, fields: usize) -> Self {
        EventText { event, texts: (0..fields).map(|_| OnceCell::new()).collect() }
    }

    fn field(&self, index: usize, path: &Option<Vec<String>>) -> Option<&FieldValue<'e>> {
        self.texts[index]
            .get_or_init(|| {
                let text = match path {
                    None => match self.event.payload_json() {
                        Some(payload) => value_text(payload),
                        None => field_text(self.event.json(), &["payload".to_string()])?,
                    },
                    Some(path) => field_text(self.event.json(), path)?,
                };
                Some(FieldValue { text, lower: OnceCell::new() })
            })
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verdict(config: Value, event: Value) -> Verdict {
        let filter = EventFilter::compile(&config).unwrap();
        let json = event.to_string();
        filter.test(&JsonEvent { kind: event["type"].as_str(), json: &json }, &mut |_| {})
    }

    #[test]
    fn rules_modes_and_always_allow() {
        let call = json!({"type": "tool_call", "payload": {"toolName": "users:get", "args": {"id": 7}}});
        let include = |rules: Value| json!({"mode": "include", "rules": rules});
        assert_eq!(
            verdict(include(json!([{"types": {"types": ["tool_call"]}}])), call.clone()),
            Verdict::Send(true)
        );
        assert_eq!(verdict(include(json!([])), call.clone()), Verdict::Send(false));
        assert_eq!(verdict(include(json!([])), json!({"type": "final"})), Verdict::Send(true));
        assert_eq!(verdict(json!({"mode": "sideways", "rules": [{}]}), call.clone()), Verdict::Send(false));
        let content = |p: Value| include(json!([{"content": {"patterns": [p]}}]));
        assert_eq!(
            verdict(
                content(json!({"type": "glob", "pattern": "users:*", "field": "payload.toolName"})),
                call.clone()
            ),
            Verdict::Send(true)
        );
        assert_eq!(
            verdict(
                content(json!({"type": "exact", "pattern": "7", "field": "payload.args.id"})),
                call.clone()
            ),
            Verdict::Send(true)
        );
        assert_eq!(
            verdict(json!({"mode": "include", "rules": "x"}), call.clone()),
            Verdict::Thrown("this.config.rules.some is not a function".into())
        );
    }

    #[test]
    fn construction_errors_have_the_original_texts() {
        let refused = |config: Value| EventFilter::compile(&config).unwrap_err();
        assert_eq!(refused(json!({"mode": "include"})), "this.config.rules is not iterable");
        assert_eq!(refused(Value::Null), "Cannot read properties of null (reading 'alwaysAllow')");
        assert_eq!(
            refused(json!({"rules": [{"content": {"patterns": {}}}]})),
            "rule.content.patterns is not iterable"
        );
    }

    #[test]
    fn pattern_errors_reach_on_error_as_no_match() {
        let filter = EventFilter::compile(
            &json!({"mode": "include", "alwaysAllow": [], "rules": [{"content": {"patterns": [{"type": "glob", "pattern": 42}]}}]}),
        )
        .unwrap();
        let mut errors = Vec::new();
        let json = r#"{"type":"stdout","payload":{"chunk":"x"}}"#;
        let verdict =
            filter.test(&JsonEvent { kind: Some("stdout"), json }, &mut |m| errors.push(m.to_string()));
        assert_eq!((verdict, errors), (Verdict::Send(false), vec!["invalid pattern".to_string()]));
    }
}
