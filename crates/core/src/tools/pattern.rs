//! Tool-name patterns: the one matcher behind a session's `allowedTools` and the seed API's
//! `ToolRouter`, `AccessController` and `RateLimiter` (whose JavaScript classes ask the
//! core through the binding). Tool names are `:`-separated segments (`users:list`,
//! `user:profile:read`):
//!
//! - `*` is any run of characters inside one segment (never `:`), possibly empty;
//! - `**` (or a longer run of stars) is any run of characters, `:` included;
//! - `?` is exactly one character (a code point) other than `:`;
//! - everything else is literal: `.`, `+`, `(`, `[`, `\` have no special meaning, and there
//!   is no escape syntax because tool names never need one.
//!
//! A pattern compiles to a linear-time regex, so several `**` cannot make matching
//! polynomial in the name's length (names come from untrusted scripts).

use regex::{Regex, RegexSet};

/// Why a pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternError {
    /// `""`: it would match nothing a tool can be called, and is always a mistake.
    Empty,
}

/// The regex source of one pattern (anchored; `.` crosses newlines, as a name may hold one).
pub fn pattern_regex(pattern: &str) -> Result<String, PatternError> {
    if pattern.is_empty() {
        return Err(PatternError::Empty);
    }
    let mut out = String::from("(?s)^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                out.push_str(".*");
            }
            '*' => out.push_str("[^:]*"),
            '?' => out.push_str("[^:]"),
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out.push('$');
    Ok(out)
}

/// One compiled pattern.
#[derive(Clone, Debug)]
pub struct ToolPattern(Regex);

impl ToolPattern {
    pub fn compile(pattern: &str) -> Result<ToolPattern, PatternError> {
        let source = pattern_regex(pattern)?;
        // Escaped literals and three fixed pieces: the source is always a valid regex.
        Ok(ToolPattern(Regex::new(&source).expect("a tool pattern is a valid regex")))
    }

    pub fn matches(&self, name: &str) -> bool {
        self.0.is_match(name)
    }
}

/// Several patterns matched at once (a session's `allowedTools`).
pub fn pattern_set(patterns: &[String]) -> Result<RegexSet, PatternError> {
    let sources = patterns.iter().map(|p| pattern_regex(p)).collect::<Result<Vec<_>, _>>()?;
    Ok(RegexSet::new(sources).expect("tool patterns are valid regexes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        ToolPattern::compile(pattern).unwrap().matches(name)
    }

    #[test]
    fn stars_question_marks_and_literals() {
        assert!(matches("admin:*", "admin:delete"));
        assert!(!matches("admin:*", "admin:x:y"));
        assert!(matches("a***", "a:b:c"));
        assert!(matches("**", "a\nb:c"));
        assert!(matches("a?c", "a😀c"));
        assert!(!matches("a?c", "a:c"));
        assert!(matches("a\\d", "a\\d"));
        assert!(!matches("tool.*", "toolsx"));
        assert_eq!(ToolPattern::compile("").unwrap_err(), PatternError::Empty);
    }
}
