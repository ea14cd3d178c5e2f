//! `regex` content patterns. Filters come from clients, so no pattern may hang a thread:
//! a pattern runs on Rust's linear-time engine when it can; one that needs backtracking
//! (lookaround, backreferences) runs on a backtracking engine with a hard step limit
//! (`BACKTRACK_LIMIT`; past it the pattern does not match), unless the original's ReDoS
//! heuristics flag it, in which case it never matches. As in the original, inputs longer
//! than `MAX_REGEX_INPUT_LENGTH` never match, and flagged patterns are reported (the
//! original's `console.warn`).

use std::sync::LazyLock;

use super::js::{utf16_len, utf16_prefix};

/// Longer inputs never reach a regex pattern: they simply do not match.
pub const MAX_REGEX_INPUT_LENGTH: usize = 10_000;
/// Only this much of a pattern is inspected by the ReDoS heuristics.
const MAX_PATTERN_LENGTH_FOR_REDOS_CHECK: usize = 500;
/// Backtracking steps one match may take.
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// The original's heuristics for nested quantifiers, overlapping alternations and repeated
/// groups. Bounded quantifiers keep the detectors themselves linear.
static REDOS_DETECTION_PATTERNS: LazyLock<[regex::Regex; 3]> = LazyLock::new(|| {
    [
        r"\([^)]{0,100}[*+{][^)]{0,100}\)[*+{]",
        r"\([^|]{0,100}\|[^)]{0,100}\)[*+{]",
        r"\([^)]{0,100}[*+][^)]{0,100}\)[*+]",
    ]
    .map(|p| regex::Regex::new(p).expect("valid detector"))
});

/// Whether the original's heuristics call `pattern` potentially vulnerable.
pub fn is_potentially_vulnerable(pattern: &str) -> bool {
    let inspected = utf16_prefix(pattern, MAX_PATTERN_LENGTH_FOR_REDOS_CHECK);
    REDOS_DETECTION_PATTERNS.iter().any(|detector| detector.is_match(inspected))
}

/// The original's warning for a flagged pattern.
pub fn vulnerable_warning(pattern: &str) -> String {
    format!(
        "[EventFilter] Potentially vulnerable regex pattern detected: {pattern}. \
         Input length will be limited to {MAX_REGEX_INPUT_LENGTH} characters for protection."
    )
}

#[derive(Debug)]
enum Engine {
    Linear(regex::Regex),
    Backtracking(fancy_regex::Regex),
    /// Needs backtracking and looks catastrophic: never matches.
    Never,
}

/// A compiled `regex` pattern.
#[derive(Debug)]
pub struct ContentRegex {
    engine: Engine,
}

impl ContentRegex {
    /// Compiles `pattern`; an invalid one gives the text of its `SyntaxError`.
    pub fn compile(pattern: &str, case_insensitive: bool) -> Result<ContentRegex, String> {
        let linear =
            regex::RegexBuilder::new(pattern).case_insensitive(case_insensitive).size_limit(1 << 20).build();
        if let Ok(regex) = linear {
            return Ok(ContentRegex { engine: Engine::Linear(regex) });
        }
        let backtracking = fancy_regex::RegexBuilder::new(pattern)
            .case_insensitive(case_insensitive)
            .backtrack_limit(BACKTRACK_LIMIT)
            .build();
        match backtracking {
            Ok(_) if is_potentially_vulnerable(pattern) => Ok(ContentRegex { engine: Engine::Never }),
            Ok(regex) => Ok(ContentRegex { engine: Engine::Backtracking(regex) }),
            Err(e) => {
                let flags = if case_insensitive { "i" } else { "" };
                Err(format!("Invalid regular expression: /{pattern}/{flags}: {e}"))
            }
        }
    }

    /// Whether `value` matches (never for inputs past `MAX_REGEX_INPUT_LENGTH`).
    pub fn test(&self, value: &str) -> bool {
        if value.len() > MAX_REGEX_INPUT_LENGTH && utf16_len(value) > MAX_REGEX_INPUT_LENGTH {
            return false;
        }
        self.test_unbounded(value)
    }

    /// Whether `value` matches, at any length (the compiled regex's own `test`).
    pub fn test_unbounded(&self, value: &str) -> bool {
        match &self.engine {
            Engine::Linear(regex) => regex.is_match(value),
            // Past the step limit: no match.
            Engine::Backtracking(regex) => regex.is_match(value).unwrap_or(false),
            Engine::Never => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_heuristics_and_bounds() {
        let linear = ContentRegex::compile("^(a+)+$", false).unwrap();
        assert!(!linear.test(&format!("{}b", "a".repeat(60))));
        assert!(linear.test(&"a".repeat(60)));
        assert!(!linear.test(&"a".repeat(10_001)));
        let behind = ContentRegex::compile("(?<=x)y", false).unwrap();
        assert!(behind.test("xy") && !behind.test("zy"));
        assert!(ContentRegex::compile(r"^(ab)\1$", false).unwrap().test("abab"));
        assert!(!ContentRegex::compile(r"^(a+)+\1$", false).unwrap().test("aa"));
        assert!(ContentRegex::compile("a(", false).is_err());
        for flagged in ["(a+)+$", "(a|ab)*", "(x*)*y", "(a{2})+"] {
            assert!(is_potentially_vulnerable(flagged), "{flagged}");
        }
        for fine in ["^abc$", "a+b*", "(ab)c+"] {
            assert!(!is_potentially_vulnerable(fine), "{fine}");
        }
        assert!(!is_potentially_vulnerable(&format!("{}(a+)+", "x".repeat(500))));
        assert!(is_potentially_vulnerable(&format!("{}(a+)+", "x".repeat(490))));
        // A backtracking pattern the heuristics miss still ends, at its step limit.
        let slow = ContentRegex::compile(r"^(a*)a*a*a*a*a*\1c", false).unwrap();
        assert!(!is_potentially_vulnerable(r"^(a*)a*a*a*a*a*\1c"));
        assert!(!slow.test(&"a".repeat(5_000)));
    }
}
