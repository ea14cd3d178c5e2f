//! `BindingEventFilter` and `BindingGlob`: the core's event filters (`filter`) for the
//! facade's `EventFilter` and `execute()`'s `filter` option, and its minimatch globs for
//! `lib/glob.js`. The facade keeps only the original's shell (argument checks, `console`
//! output, `onError` calls); every answer comes from here.

use enclave_broker_core::filter::{self, EventFilter, Glob, JsonEvent, Notice, Verdict};
use napi::bindgen_prelude::Either;
use napi_derive::napi;

use crate::error::BindingError;

/// What compiling printed in the original: `level` `'warn'` (a flagged regex, `message` is
/// the warning) or `'error'` (an invalid regex, `message` is its `SyntaxError`'s text).
#[napi(object)]
pub struct BindingFilterNotice {
    pub level: String,
    pub pattern: String,
    pub message: String,
}

/// An answer that is not a plain yes or no: the errors of single patterns (each a
/// `TypeError` for `onError`, counted as no match), or the `TypeError` the original throws.
#[napi(object)]
pub struct BindingFilterVerdict {
    pub send: bool,
    pub errors: Vec<String>,
    pub thrown: Option<String>,
}

#[napi]
pub struct BindingEventFilter {
    filter: EventFilter,
}

impl BindingEventFilter {
    /// A filter the core compiled already (the HTTP rules' request filters).
    pub fn from_core(filter: EventFilter) -> BindingEventFilter {
        BindingEventFilter { filter }
    }
}

#[napi]
impl BindingEventFilter {
    /// The filter for an `EventFilterConfig` given as JSON, or the `TypeError` the
    /// original's constructor throws for it.
    #[napi]
    pub fn compile(config_json: String) -> Either<BindingEventFilter, BindingError> {
        let config = match serde_json::from_str(&config_json) {
            Ok(config) => config,
            Err(e) => return Either::B(BindingError::type_error("INVALID_FILTER", e.to_string())),
        };
        match EventFilter::compile(&config) {
            Ok(filter) => Either::A(BindingEventFilter { filter }),
            Err(message) => Either::B(BindingError::type_error("INVALID_FILTER", message)),
        }
    }

    #[napi]
    pub fn notices(&self) -> Vec<BindingFilterNotice> {
        self.filter
            .notices()
            .iter()
            .map(|notice| match notice {
                Notice::VulnerableRegex { pattern, message } => BindingFilterNotice {
                    level: "warn".into(),
                    pattern: pattern.clone(),
                    message: message.clone(),
                },
                Notice::InvalidRegex { pattern, syntax_error } => BindingFilterNotice {
                    level: "error".into(),
                    pattern: pattern.clone(),
                    message: syntax_error.clone(),
                },
            })
            .collect()
    }

    /// The keys of the compiled regexes (`pattern:` or `pattern:i`), in the original's order.
    #[napi]
    pub fn regex_keys(&self) -> Vec<String> {
        self.filter.regexes().map(|(key, _)| key.to_string()).collect()
    }

    /// `compiledRegexes.get(key).regex.test(value)` for the key at `index`.
    #[napi]
    pub fn test_regex(&self, index: u32, value: String) -> bool {
        self.filter.regex(index as usize).is_some_and(|regex| regex.test_unbounded(&value))
    }

    /// Whether answers depend on the event's type alone (the facade may remember them).
    #[napi(getter)]
    pub fn by_type_only(&self) -> bool {
        self.filter.by_type_only()
    }

    /// Whether `sends` needs the event's JSON.
    #[napi(getter)]
    pub fn reads_content(&self) -> bool {
        self.filter.reads_content()
    }

    /// Whether to send the event of type `event_type` (None when not a string) whose JSON
    /// is `event_json` (needed only when the filter reads content).
    #[napi]
    pub fn sends(
        &self,
        event_type: Option<String>,
        event_json: Option<String>,
    ) -> Either<bool, BindingFilterVerdict> {
        let event = JsonEvent { kind: event_type.as_deref(), json: event_json.as_deref().unwrap_or("{}") };
        let mut errors = Vec::new();
        let verdict = self.filter.test(&event, &mut |message| errors.push(message.to_string()));
        match (verdict, errors.is_empty()) {
            (Verdict::Send(send), true) => Either::A(send),
            (Verdict::Send(send), false) => Either::B(BindingFilterVerdict { send, errors, thrown: None }),
            (Verdict::Thrown(message), _) => {
                Either::B(BindingFilterVerdict { send: false, errors, thrown: Some(message) })
            }
        }
    }
}

/// A compiled minimatch glob.
#[napi]
pub struct BindingGlob {
    glob: Glob,
}

#[napi]
impl BindingGlob {
    /// The glob, or minimatch's `TypeError` for it (a pattern that is too long).
    #[napi]
    pub fn compile(pattern: String, nocase: bool) -> Either<BindingGlob, BindingError> {
        match Glob::new(&pattern, nocase) {
            Ok(glob) => Either::A(BindingGlob { glob }),
            Err(e) => Either::B(BindingError::type_error("INVALID_GLOB", e.0)),
        }
    }

    #[napi]
    pub fn matches(&self, path: String) -> bool {
        self.glob.matches(&path)
    }
}

/// minimatch's `braceExpand(pattern)`.
#[napi]
pub fn brace_expand(pattern: String) -> Either<Vec<String>, BindingError> {
    match filter::check_glob_pattern(&pattern) {
        Ok(()) => Either::A(filter::brace_expand(&pattern)),
        Err(e) => Either::B(BindingError::type_error("INVALID_GLOB", e.0)),
    }
}
