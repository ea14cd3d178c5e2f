//! Event filters, the one implementation behind the JavaScript `EventFilter` (through
//! `BindingEventFilter`), `execute()`'s `filter` option and the HTTP routes' filters.
//! `event_filter.rs` is the original's rule evaluation, `glob.rs` (with `brace.rs`) its
//! minimatch globs, `content_regex.rs` its regex patterns with their ReDoS guards,
//! `field.rs` how a field is read from an event's JSON, `js.rs` the JavaScript value rules
//! these depend on.

mod brace;
mod content_regex;
mod event_filter;
mod field;
mod glob;
mod js;

pub use brace::brace_expand;
pub use content_regex::{ContentRegex, MAX_REGEX_INPUT_LENGTH};
pub use event_filter::{DEFAULT_ALWAYS_ALLOW, EventFilter, FilterEvent, JsonEvent, Notice, Verdict};
pub use glob::{Glob, GlobError, check_pattern as check_glob_pattern};
