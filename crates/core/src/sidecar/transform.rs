//! The script rewrite of the reference sidecar, done on the broker before the script goes
//! to an engine (the original's string extraction and concatenation transforms):
//!
//! - every string literal, and every template literal without substitutions, of at least
//!   `extractionThreshold` UTF-8 bytes is lifted into the sidecar and replaced by its
//!   reference string (`"__REF_<uuid>__"`), so the data never enters the sandbox;
//! - every `a + b` becomes `__safe_concat(a, b)` and every untagged template literal with
//!   substitutions becomes `__safe_template([quasis], ...values)`, two helpers defined at the
//!   start of the script (on its first line, so line numbers stay) that refuse, or turn into
//!   composite handles, the concatenation of a reference (`allowComposites`).
//!
//! The script is parsed inside the same wrapper the engine compiles it in (top-level
//! `await` and `return` parse); a script that does not parse is left as it is, for V8 to
//! report the syntax error in its own words.

use oxc_allocator::Allocator;
use oxc_ast::ast::{
    BinaryExpression, BinaryOperator, StringLiteral, TaggedTemplateExpression, TemplateLiteral,
};
use oxc_ast_visit::{Visit, walk};
use oxc_parser::Parser;
use oxc_span::{GetSpan, SourceType};

use super::store::{Sidecar, SidecarError};
use crate::engine::{WRAPPER_HEAD as HEAD, WRAPPER_TAIL as TAIL};

/// The two helpers, as the original's inner realm defines them: numbers add, strings
/// concatenate, and an operand that is a whole reference string is refused (or, with
/// composites allowed, kept as `{__type: 'composite', __operation: 'concat', __parts,
/// __estimatedSize: 0}` for the host to join when the handle reaches a tool).
fn helpers(allow_composites: bool) -> String {
    format!(
        "const {{ __safe_concat, __safe_template }} = ((REF, ALLOW, toString, join) => {{ \
const isRef = (v) => typeof v === 'string' && REF.test(v); \
const composite = (parts) => ({{ __type: 'composite', __operation: 'concat', __parts: parts, __estimatedSize: 0 }}); \
const refuse = (where) => {{ throw new Error('Cannot concatenate reference IDs' + where + '. Pass references directly to callTool arguments. Composite handles are disabled in the current security configuration.'); }}; \
return {{ \
__safe_concat(left, right) {{ \
if (typeof left === 'number' && typeof right === 'number') return left + right; \
if ((typeof left === 'string' || typeof right === 'string') && (isRef(left) || isRef(right))) {{ \
if (!ALLOW) refuse(''); return composite([toString(left), toString(right)]); }} \
return left + right; }}, \
__safe_template(quasis, ...values) {{ \
const parts = []; let refs = false; \
for (let i = 0; i < quasis.length; i++) {{ parts.push(quasis[i]); \
if (i < values.length) {{ const text = toString(values[i]); parts.push(text); if (isRef(text)) refs = true; }} }} \
if (!refs) return join(parts, ''); \
if (!ALLOW) refuse(' in template literals'); return composite(parts); }} }}; \
}})(/^__REF_[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}__$/i, {allow_composites}, String, \
Function.prototype.call.bind(Array.prototype.join)); "
    )
}

/// One change to the source: `text` replaces `start..end` (empty for an insertion).
/// `rank` orders edits that start at the same place: closing parentheses (inner ones
/// first), then opening calls (outer ones first), then replacements.
struct Edit {
    start: u32,
    end: u32,
    rank: (u8, i64),
    text: String,
}

struct Rewriter<'s> {
    sidecar: &'s Sidecar,
    threshold: usize,
    edits: Vec<Edit>,
    visits: i64,
    error: Option<SidecarError>,
}

impl Rewriter<'_> {
    fn insert_open(&mut self, at: u32, text: &str) {
        self.visits += 1;
        self.edits.push(Edit { start: at, end: at, rank: (1, self.visits), text: text.to_string() });
    }

    fn insert_close(&mut self, at: u32) {
        self.visits += 1;
        self.edits.push(Edit { start: at, end: at, rank: (0, -self.visits), text: ")".to_string() });
    }

    fn replace(&mut self, start: u32, end: u32, text: String) {
        self.edits.push(Edit { start, end, rank: (2, 0), text });
    }

    /// Lifts `value` into the sidecar when it is large enough; the literal at `span` becomes
    /// the reference string.
    fn lift(&mut self, start: u32, end: u32, value: &str) -> bool {
        if value.len() < self.threshold || self.error.is_some() {
            return false;
        }
        match self.sidecar.store(value.to_string()) {
            Ok(id) => {
                self.replace(start, end, format!("\"{id}\""));
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }
}

impl<'a> Visit<'a> for Rewriter<'_> {
    fn visit_string_literal(&mut self, it: &StringLiteral<'a>) {
        self.lift(it.span.start, it.span.end, it.value.as_str());
    }

    fn visit_binary_expression(&mut self, it: &BinaryExpression<'a>) {
        if it.operator != BinaryOperator::Addition {
            walk::walk_binary_expression(self, it);
            return;
        }
        let (left, right) = (it.left.span(), it.right.span());
        self.insert_open(it.span.start, "__safe_concat(");
        self.visit_expression(&it.left);
        self.replace(left.end, right.start, ", ".to_string());
        self.visit_expression(&it.right);
        self.insert_close(it.span.end);
    }

    fn visit_template_literal(&mut self, it: &TemplateLiteral<'a>) {
        if it.expressions.is_empty() {
            if let Some(cooked) = it.quasis.first().and_then(|q| q.value.cooked.as_ref()) {
                self.lift(it.span.start, it.span.end, cooked.as_str());
            }
            return;
        }
        let quasis: Vec<String> = it
            .quasis
            .iter()
            .map(|q| {
                let cooked = q.value.cooked.as_ref().map(|c| c.as_str()).unwrap_or("");
                serde_json::to_string(cooked).unwrap_or_else(|_| "\"\"".into())
            })
            .collect();
        let expressions: Vec<_> = it.expressions.iter().map(|e| e.span()).collect();
        self.replace(
            it.span.start,
            expressions[0].start,
            format!("__safe_template([{}], ", quasis.join(", ")),
        );
        for (i, expression) in it.expressions.iter().enumerate() {
            self.visit_expression(expression);
            let end = match expressions.get(i + 1) {
                Some(next) => next.start,
                None => it.span.end,
            };
            let text = if i + 1 < expressions.len() { ", " } else { ")" };
            self.replace(expressions[i].end, end, text.to_string());
        }
    }

    fn visit_tagged_template_expression(&mut self, it: &TaggedTemplateExpression<'a>) {
        // A tag receives its template as written: only the substitutions are rewritten.
        self.visit_expression(&it.tag);
        for expression in &it.quasi.expressions {
            self.visit_expression(expression);
        }
    }
}

/// Largest script rewritten; a larger one runs as written (its literals enter the sandbox,
/// and `+` does not check for references).
pub const MAX_REWRITE_BYTES: usize = 4 * 1024 * 1024;

/// Stack for the rewrite: oxc parses recursively, up to ~700 bytes of stack per byte of
/// input in the worst shapes (`()=>()=>…`, `!!!…`; see the engine's `wrap.rs`), and the
/// visitor recurses too. Only touched pages cost memory.
fn stack_for(code: &str) -> usize {
    64 * 1024 * 1024 + code.len() * 2048
}

/// The script as the engine should run it, with its large literals in `sidecar`; an error
/// when a literal does not fit the sidecar's limits. The parse runs on a thread of its own
/// with a stack sized for the script, never on the caller's (Node's main thread, a server
/// worker), which a deeply nested script could overflow.
pub fn rewrite(code: &str, sidecar: &Sidecar) -> Result<String, SidecarError> {
    if code.len() > MAX_REWRITE_BYTES {
        return Ok(code.to_string());
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("sidecar-rewrite".into())
            .stack_size(stack_for(code))
            .spawn_scoped(scope, || rewrite_here(code, sidecar))
            .map_err(|e| {
                SidecarError(format!("The script could not be prepared for the reference sidecar: {e}"))
            })?
            .join()
            .unwrap_or_else(|_| {
                Err(SidecarError("The script could not be prepared for the reference sidecar".into()))
            })
    })
}

fn rewrite_here(code: &str, sidecar: &Sidecar) -> Result<String, SidecarError> {
    let wrapped = format!("{HEAD}{code}{TAIL}");
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, &wrapped, SourceType::script()).parse();
    if parsed.panicked || parsed.diagnostics.has_errors() {
        return Ok(code.to_string());
    }
    let mut rewriter = Rewriter {
        sidecar,
        threshold: sidecar.config().extraction_threshold,
        edits: Vec::new(),
        visits: 0,
        error: None,
    };
    rewriter.visit_program(&parsed.program);
    if let Some(error) = rewriter.error {
        return Err(error);
    }
    let mut edits = rewriter.edits;
    edits.sort_by_key(|e| (e.start, e.rank));
    let (head, body_end) = (HEAD.len() as u32, (wrapped.len() - TAIL.len()) as u32);
    let mut out = helpers(sidecar.config().allow_composites);
    let mut at = head;
    for edit in edits {
        // Only the user's code is rewritten (the wrapper is the engine's).
        if edit.start < head || edit.end > body_end || edit.start < at {
            continue;
        }
        out.push_str(&wrapped[at as usize..edit.start as usize]);
        out.push_str(&edit.text);
        at = edit.end;
    }
    out.push_str(&wrapped[at as usize..body_end as usize]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::config::ReferenceConfig;
    use super::*;

    fn sidecar(threshold: usize) -> Sidecar {
        Sidecar::new(ReferenceConfig {
            extraction_threshold: threshold,
            ..ReferenceConfig::for_level("STANDARD")
        })
    }

    fn body(code: &str) -> String {
        let out = rewrite(code, &sidecar(1 << 20)).unwrap();
        out[helpers(true).len()..].to_string()
    }

    #[test]
    fn additions_become_nested_concat_calls() {
        assert_eq!(body("return a + b + c"), "return __safe_concat(__safe_concat(a, b), c)");
        assert_eq!(body("x = a + (b + c) - d"), "x = __safe_concat(a, (__safe_concat(b, c))) - d");
        assert_eq!(body("f(a * 2 + 1)"), "f(__safe_concat(a * 2, 1))");
    }

    #[test]
    fn templates_with_substitutions_become_template_calls() {
        assert_eq!(body("`a${x}b${y + 1}`"), "__safe_template([\"a\", \"b\", \"\"], x, __safe_concat(y, 1))");
        assert_eq!(body("`${`${x}`}`"), "__safe_template([\"\", \"\"], __safe_template([\"\", \"\"], x))");
        assert_eq!(body("tag`a${x + y}`"), "tag`a${__safe_concat(x, y)}`");
        assert_eq!(body("`plain`"), "`plain`");
    }

    #[test]
    fn large_literals_are_lifted_and_small_ones_stay() {
        let store = sidecar(8);
        let out =
            rewrite("const a = 'short'; const b = \"0123456789\"; const c = `abcdefghij`;", &store).unwrap();
        let out = &out[helpers(true).len()..];
        assert!(out.starts_with("const a = 'short'; const b = \"__REF_"), "{out}");
        assert_eq!(store.count(), 2);
        let ids: Vec<&str> = out.split('"').filter(|s| s.starts_with("__REF_")).collect();
        assert_eq!(store.get(ids[0]).as_deref(), Some("0123456789"));
        assert_eq!(store.get(ids[1]).as_deref(), Some("abcdefghij"));
    }

    #[test]
    fn deeply_nested_scripts_are_rewritten_on_a_stack_of_their_own() {
        // Called from a thread with a small stack, as a server worker would.
        let n = 256 * 1024;
        let deep = "()=>".repeat(n / 4) + "1 + 2";
        let out = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || rewrite(&deep, &sidecar(1 << 20)).unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert!(out.ends_with("=>__safe_concat(1, 2)"));
        let huge = "1;".repeat(MAX_REWRITE_BYTES / 2 + 1);
        assert_eq!(rewrite(&huge, &sidecar(8)).unwrap(), huge);
    }

    #[test]
    fn scripts_that_do_not_parse_are_left_alone() {
        assert_eq!(rewrite("return (", &sidecar(8)).unwrap(), "return (");
    }
}
