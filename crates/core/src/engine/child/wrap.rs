//! Turns a script into the body of an async function, as the original does: top-level
//! `return` and `await` work, and a trailing expression statement becomes the result.
//!
//! The code is parsed (oxc) inside the exact wrapper V8 will compile, so positions line up,
//! and a script that closes the wrapper early (`}); evil(); (async function(){`) is refused
//! instead of running outside the function.

use oxc_allocator::Allocator;
use oxc_ast::ast::{Expression, Statement};
use oxc_parser::Parser;
use oxc_span::{GetSpan, SourceType};

pub use crate::engine::{WRAPPER_HEAD, WRAPPER_TAIL};

/// Lines the wrapper adds before the user's first line (for error positions).
pub const LINE_OFFSET: i32 = 1;

#[derive(Debug, PartialEq, Eq)]
pub enum Wrapped {
    /// Source to compile: an expression evaluating to the async function.
    Source(String),
    /// The code tried to leave the function body.
    EscapesWrapper,
}

/// Largest script parsed with oxc. oxc parses recursively, using up to ~700 bytes of stack
/// per byte of input in the worst shapes (`()=>()=>…`, `!!!…`); engine threads have a
/// stack large enough for this bound. Larger scripts still run, without the
/// trailing-expression rule.
pub const MAX_TRANSFORM_BYTES: usize = 256 * 1024;

pub fn wrap(code: &str) -> Wrapped {
    let plain = format!("{WRAPPER_HEAD}{code}{WRAPPER_TAIL}");
    if code.len() > MAX_TRANSFORM_BYTES {
        return Wrapped::Source(plain);
    }
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, &plain, SourceType::script()).parse();
    if parsed.panicked || parsed.diagnostics.has_errors() {
        // Let V8 compile it and report the syntax error in its own words. If V8 accepts
        // what oxc rejected, the script still runs, only without the trailing-expression rule.
        return Wrapped::Source(plain);
    }

    let body = parsed.program.body.as_slice();
    let function = match body {
        [Statement::ExpressionStatement(stmt)] => match &stmt.expression {
            Expression::ParenthesizedExpression(paren) => match &paren.expression {
                Expression::FunctionExpression(f) if f.r#async => Some(f),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    let Some(function) = function else { return Wrapped::EscapesWrapper };
    let Some(function_body) = function.body.as_ref() else { return Wrapped::EscapesWrapper };
    // The function must be the one we opened: it starts at our `(` and ends at our `}`.
    let expected_end = (plain.len() - 1) as u32;
    if function.span.start != 1 || function.span.end != expected_end || !parsed.program.directives.is_empty()
    {
        return Wrapped::EscapesWrapper;
    }

    let last_expression = match function_body.statements.last() {
        Some(Statement::ExpressionStatement(stmt)) => Some(stmt.expression.span()),
        Some(_) => None,
        None => function_body.directives.last().map(|d| d.expression.span),
    };
    match last_expression {
        Some(span) => {
            let (start, end) = (span.start as usize, span.end as usize);
            Wrapped::Source(format!("{}return ({}){}", &plain[..start], &plain[start..end], &plain[end..]))
        }
        None => Wrapped::Source(plain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(code: &str) -> String {
        match wrap(code) {
            Wrapped::Source(s) => s,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn trailing_expression_becomes_the_result() {
        assert_eq!(source("const x = 5; x + 3"), "(async function () {\nconst x = 5; return (x + 3)\n})");
        assert_eq!(source("1 + 2;"), "(async function () {\nreturn (1 + 2);\n})");
        assert_eq!(source("'hello'"), "(async function () {\nreturn ('hello')\n})");
    }

    #[test]
    fn explicit_returns_and_non_expression_endings_are_untouched() {
        assert_eq!(source("return 1 + 2"), "(async function () {\nreturn 1 + 2\n})");
        assert_eq!(source("if (a) { b }"), "(async function () {\nif (a) { b }\n})");
        assert_eq!(source(""), "(async function () {\n\n})");
        assert_eq!(source("// only a comment"), "(async function () {\n// only a comment\n})");
    }

    #[test]
    fn await_at_top_level_parses() {
        assert_eq!(
            source("const r = await callTool('a', {}); r.x"),
            "(async function () {\nconst r = await callTool('a', {}); return (r.x)\n})"
        );
    }

    #[test]
    fn breaking_out_of_the_wrapper_is_refused() {
        assert_eq!(wrap("}); globalThis.x = 1; (async function () {"), Wrapped::EscapesWrapper);
        assert_eq!(wrap("})\n(async function () {"), Wrapped::EscapesWrapper);
    }

    #[test]
    fn the_deepest_shapes_fit_the_engine_stack() {
        // The engine thread's stack size, with inputs at the transform's size limit.
        let n = MAX_TRANSFORM_BYTES;
        let cases = [
            "()=>".repeat(n / 4) + "1",
            "!".repeat(n - 1) + "x",
            "a?b:".repeat(n / 4) + "c",
            format!("{}1{}", "(".repeat(n / 2 - 1), ")".repeat(n / 2 - 1)),
        ];
        let parsed = std::thread::Builder::new()
            .stack_size(super::super::STACK_SIZE)
            .spawn(move || cases.iter().all(|c| matches!(wrap(c), Wrapped::Source(_))))
            .unwrap()
            .join()
            .unwrap();
        assert!(parsed);
        let huge = "1;".repeat(MAX_TRANSFORM_BYTES);
        assert_eq!(source(&huge), format!("{WRAPPER_HEAD}{huge}{WRAPPER_TAIL}"));
    }

    #[test]
    fn syntax_errors_are_left_for_v8_to_report() {
        assert_eq!(source("return ("), "(async function () {\nreturn (\n})");
    }
}
