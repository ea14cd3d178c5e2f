//! Glob matching for event filters' `glob` content patterns, with the answers of
//! `minimatch(value, pattern, {nocase})` (minimatch 10, what the original calls): brace
//! expansion (`brace.rs`), `*`, `?`, `[...]` (ranges, `!`/`^`, POSIX classes), `**` path
//! segments, extglobs (`@ ? + * !`), a leading `!` to negate, `#` comments, backslash
//! escapes, and wildcards that never match a leading dot. Paths are split on `/`, so `*`
//! never crosses one. Only minimatch's default options plus `nocase` exist.
//!
//! Each path segment of a pattern becomes an exact string, one of minimatch's shortcuts,
//! or a regex. Segment regexes use lookahead (a wildcard may not start with a dot), so
//! they run on a backtracking engine with a hard step limit (`BACKTRACK_LIMIT`): a segment
//! that exceeds it does not match, and no pattern can hang a thread.

use super::brace::brace_expand;
use super::js::utf16_len;

/// minimatch refuses longer patterns (`TypeError: pattern is too long`).
pub const MAX_PATTERN_LENGTH: usize = 65_536;
/// Extglobs nested deeper than this are plain text, as in minimatch (except kinds that may
/// repeat inside each other, e.g. `*(a|+(b))`, which do not count).
const MAX_GROUP_DEPTH: usize = 2;
/// Backtracking steps one segment match may take.
pub const BACKTRACK_LIMIT: usize = 100_000;

/// Why a glob cannot be used: minimatch's `TypeError` messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobError(pub &'static str);

/// Checks a pattern as minimatch does before using it.
pub fn check_pattern(pattern: &str) -> Result<(), GlobError> {
    if pattern.len() > MAX_PATTERN_LENGTH && utf16_len(pattern) > MAX_PATTERN_LENGTH {
        return Err(GlobError("pattern is too long"));
    }
    Ok(())
}

const GROUP_KINDS: &str = "!?+*@";

/// The kinds a group of `kind` may hold without counting toward `MAX_GROUP_DEPTH`.
fn absorbs(kind: char) -> &'static str {
    match kind {
        '*' => "*+?@",
        '+' => "+@?*",
        _ => "?@",
    }
}

#[derive(Clone, Debug)]
enum Node {
    Text(Vec<char>),
    Group(Group),
}

#[derive(Clone, Debug)]
struct Group {
    kind: char,
    alts: Vec<Vec<Node>>,
    /// minimatch's `!(a|)` rule: an empty last alternative makes the group "anything".
    empty_last: bool,
    raw: String,
}

/// Tells which characters are escaped or class members rather than syntax: text keeps
/// `[...]` and escapes as written (they are read when compiled); the parser only needs to
/// know when `(` `|` `)` are not syntax.
#[derive(Default)]
struct Scanner {
    escaped: bool,
    class_at: Option<usize>,
    negated: bool,
}

impl Scanner {
    fn plain(&mut self, c: char, i: usize) -> bool {
        if self.escaped || c == '\\' {
            self.escaped = !self.escaped;
            return true;
        }
        if let Some(at) = self.class_at {
            if i == at + 1 {
                if c == '!' || c == '^' {
                    self.negated = true;
                }
            } else if c == ']' && !(i == at + 2 && self.negated) {
                self.class_at = None;
            }
            return true;
        }
        if c == '[' {
            self.class_at = Some(i);
            self.negated = false;
            return true;
        }
        false
    }
}

fn push_text(nodes: &mut Vec<Node>, text: &mut Vec<char>) {
    if !text.is_empty() {
        nodes.push(Node::Text(std::mem::take(text)));
    }
}

/// The group whose `(` is at `open`, and the index after it; None when it is never closed
/// (the caller then reads the rest of the segment as text).
fn read_group(src: &[char], kind: char, open: usize, depth: usize) -> Option<(Group, usize)> {
    let mut alts = Vec::new();
    let mut nodes = Vec::new();
    let mut text = Vec::new();
    let mut scanner = Scanner::default();
    let mut i = open + 1;
    while i < src.len() {
        let c = src[i];
        if scanner.plain(c, i) {
            text.push(c);
            i += 1;
            continue;
        }
        let absorbed = absorbs(kind).contains(c);
        if GROUP_KINDS.contains(c) && src.get(i + 1) == Some(&'(') && (depth <= MAX_GROUP_DEPTH || absorbed) {
            push_text(&mut nodes, &mut text);
            let (inner, next) = read_group(src, c, i + 1, depth + usize::from(!absorbed))?;
            nodes.push(Node::Group(inner));
            i = next;
            continue;
        }
        if c == '|' || c == ')' {
            let empty_last = text.is_empty();
            push_text(&mut nodes, &mut text);
            alts.push(std::mem::take(&mut nodes));
            if c == ')' {
                let raw = src[open - 1..=i].iter().collect();
                return Some((Group { kind, alts, empty_last, raw }, i + 1));
            }
            i += 1;
            continue;
        }
        text.push(c);
        i += 1;
    }
    None
}

fn parse_segment(src: &[char]) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut text = Vec::new();
    let mut scanner = Scanner::default();
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        if !scanner.plain(c, i) && GROUP_KINDS.contains(c) && src.get(i + 1) == Some(&'(') {
            match read_group(src, c, i + 1, 1) {
                None => {
                    text.extend_from_slice(&src[i..]);
                    break;
                }
                Some((group, next)) => {
                    push_text(&mut nodes, &mut text);
                    nodes.push(Node::Group(group));
                    i = next;
                    continue;
                }
            }
        }
        text.push(c);
        i += 1;
    }
    push_text(&mut nodes, &mut text);
    nodes
}

/// `[:name:]` as regex class members; `true` when minimatch lists it as "anything but".
fn posix_class(name: &str) -> Option<(&'static str, bool)> {
    Some(match name {
        "alnum" => (r"\p{L}\p{Nl}\p{Nd}", false),
        "alpha" => (r"\p{L}\p{Nl}", false),
        "ascii" => (r"\x00-\x7f", false),
        "blank" => (r"\p{Zs}\t", false),
        "cntrl" => (r"\p{Cc}", false),
        "digit" => (r"\p{Nd}", false),
        // minimatch's tables: [:graph:] as "not space or other", [:print:] as "other".
        "graph" => (r"\p{Z}\p{C}", true),
        "lower" => (r"\p{Ll}", false),
        "print" => (r"\p{C}", false),
        "punct" => (r"\p{P}", false),
        "space" => (r"\p{Z}\t\r\n\v\f", false),
        "upper" => (r"\p{Lu}", false),
        "word" => (r"\p{L}\p{Nl}\p{Nd}\p{Pc}", false),
        "xdigit" => ("A-Fa-f0-9", false),
        _ => return None,
    })
}

/// Characters with a meaning in regex syntax (escaping them is always allowed).
const REGEX_META: &str = "\\.+*?()|[]{}^$#&-~";

/// A literal character in regex syntax.
fn escape_literal(out: &mut String, c: char) {
    if REGEX_META.contains(c) {
        out.push('\\');
    }
    out.push(c);
}

/// A literal character inside a regex class (`&&`, `--` and `~~` are set operations there).
fn escape_member(out: &mut String, c: char) {
    if matches!(c, '[' | ']' | '\\' | '-' | '&' | '~' | '^') {
        out.push('\\');
    }
    out.push(c);
}

const NEVER: &str = "$.";

struct Class {
    src: String,
    length: usize,
    magic: bool,
}

/// The bracket expression at `src[at] == '['`, or None when it is not closed (`[` is then
/// literal). An impossible class matches nothing and takes the rest of the text with it,
/// as in minimatch.
fn read_class(src: &[char], at: usize) -> Option<Class> {
    let mut members: Vec<String> = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    let mut negate = false;
    let mut range_from: Option<char> = None;
    let mut started = false;
    let mut escaped = false;
    let mut i = at + 1;
    if matches!(src.get(i), Some('!' | '^')) {
        negate = true;
        i += 1;
    }
    let poison = || Some(Class { src: NEVER.into(), length: src.len() - at, magic: true });
    while i < src.len() {
        let c = src[i];
        if c == ']' && started && !escaped {
            if members.is_empty() && excluded.is_empty() {
                return poison();
            }
            let length = i + 1 - at;
            if !negate && excluded.is_empty() && members.len() == 1 {
                let member: Vec<char> = members[0].chars().collect();
                let single = match member.as_slice() {
                    [c] => Some(*c),
                    ['\\', c] => Some(*c),
                    _ => None,
                };
                if let Some(c) = single {
                    // '[x]' is one literal character, not a wildcard.
                    let mut out = String::new();
                    escape_literal(&mut out, c);
                    return Some(Class { src: out, length, magic: false });
                }
            }
            let within = format!("[{}{}]", if negate { "^" } else { "" }, members.concat());
            let outside = format!("[{}{}]", if negate { "" } else { "^" }, excluded.concat());
            let src = match (members.is_empty(), excluded.is_empty()) {
                (false, false) => format!("({within}|{outside})"),
                (false, true) => within,
                _ => outside,
            };
            return Some(Class { src, length, magic: true });
        }
        started = true;
        if c == '\\' && !escaped {
            escaped = true;
            i += 1;
            continue;
        }
        if c == '[' && !escaped && src.get(i + 1) == Some(&':') {
            let rest: String = src[i + 2..].iter().take(8).collect();
            if let Some(end) = rest.find(":]") {
                let name = &rest[..end];
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_lowercase())
                    && let Some((set, negated)) = posix_class(name)
                {
                    if range_from.is_some() {
                        return poison();
                    }
                    if negated { &mut excluded } else { &mut members }.push(set.to_string());
                    i += name.len() + 4;
                    continue;
                }
            }
        }
        escaped = false;
        if let Some(from) = range_from.take() {
            // Backwards ranges are dropped; the rest of the class still counts.
            let mut member = String::new();
            if c > from {
                escape_member(&mut member, from);
                member.push('-');
                escape_member(&mut member, c);
            } else if c == from {
                escape_member(&mut member, c);
            }
            if !member.is_empty() {
                members.push(member);
            }
        } else if src.get(i + 1) == Some(&'-') && src.get(i + 2) == Some(&']') {
            let mut member = String::new();
            escape_member(&mut member, c);
            escape_member(&mut member, '-');
            members.push(member);
            i += 1;
        } else if src.get(i + 1) == Some(&'-') {
            range_from = Some(c);
            i += 1;
        } else {
            let mut member = String::new();
            escape_member(&mut member, c);
            members.push(member);
        }
        i += 1;
    }
    None
}

const ANY_ONE: &str = "[^/]";
const ANY_RUN: &str = "[^/]*?";
const SOME_RUN: &str = "[^/]+?";
const NO_DOT: &str = r"(?!\.)";
const NOT_DOT_OR_DOTDOT: &str = r"(?!(?:^|/)\.\.?(?:$|/))";
/// Escaped characters that keep their backslash; minimatch passes the others through raw.
const KEEP_ESCAPED: &str = "().*{}+?[]^$\\!";

struct Compiled {
    src: String,
    magic: bool,
}

fn compile_text(text: &[char], non_empty_stars: bool) -> Compiled {
    let mut src = String::new();
    let mut magic = false;
    let mut in_stars = false;
    let only_stars = text.iter().all(|&c| c == '*');
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c == '*' {
            if !in_stars {
                src.push_str(if non_empty_stars && only_stars { SOME_RUN } else { ANY_RUN });
            }
            in_stars = true;
            magic = true;
            i += 1;
            continue;
        }
        in_stars = false;
        if c == '\\' {
            if i == text.len() - 1 {
                src.push_str(r"\\");
            } else {
                i += 1;
                let next = text[i];
                if KEEP_ESCAPED.contains(next) {
                    escape_literal(&mut src, next);
                } else {
                    src.push(next);
                }
            }
        } else if c == '?' {
            src.push_str(ANY_ONE);
            magic = true;
        } else {
            match (c == '[').then(|| read_class(text, i)).flatten() {
                None => escape_literal(&mut src, c),
                Some(class) => {
                    src.push_str(&class.src);
                    magic |= class.magic;
                    i += class.length - 1;
                }
            }
        }
        i += 1;
    }
    Compiled { src, magic }
}

fn starts_with_class_or_dot(src: &str, at: usize) -> bool {
    matches!(src.as_bytes().get(at), Some(b'[' | b'.'))
}

/// Where a sequence of nodes sits: whether it begins/ends the segment, what follows it
/// (a `!(...)` must look ahead over it), and whether it is inside the second or later
/// repetitions of `*(...)`/`+(...)` (where a leading dot is allowed).
#[derive(Clone)]
struct At<'a> {
    start: bool,
    end: bool,
    after: Vec<&'a Node>,
    dot_ok: bool,
}

fn compile_sequence(nodes: &[&Node], at: &At<'_>) -> Compiled {
    let mut src = String::new();
    let mut magic = false;
    let text_only = nodes.iter().all(|n| matches!(n, Node::Text(_)));
    let mut leading_negations = true;
    for (k, node) in nodes.iter().enumerate() {
        let last = k == nodes.len() - 1;
        let out = match node {
            Node::Text(text) => compile_text(text, at.start && at.end && text_only),
            Node::Group(group) => {
                let mut after: Vec<&Node> = nodes[k + 1..].to_vec();
                after.extend(at.after.iter().copied());
                compile_group(
                    group,
                    &At {
                        start: at.start && leading_negations,
                        end: at.end && last,
                        after,
                        dot_ok: at.dot_ok,
                    },
                )
            }
        };
        if !matches!(node, Node::Group(Group { kind: '!', .. })) {
            leading_negations = false;
        }
        src.push_str(&out.src);
        magic |= out.magic;
    }
    if at.start
        && let Some(Node::Text(first)) = nodes.first()
    {
        let only_dots = nodes.len() == 1 && (first.as_slice() == ['.'] || first.as_slice() == ['.', '.']);
        if !only_dots {
            let guard_traversal = (at.dot_ok && starts_with_class_or_dot(&src, 0))
                || (src.starts_with(r"\.") && starts_with_class_or_dot(&src, 2))
                || (src.starts_with(r"\.\.") && starts_with_class_or_dot(&src, 4));
            if guard_traversal {
                src.insert_str(0, NOT_DOT_OR_DOTDOT);
            } else if !at.dot_ok && starts_with_class_or_dot(&src, 0) {
                src.insert_str(0, NO_DOT);
            }
        }
    }
    Compiled { src, magic }
}

fn compile_group(group: &Group, at: &At<'_>) -> Compiled {
    let whole = at.start && at.end;
    let negation = group.kind == '!';
    let alternatives = |dot_ok: bool| -> Vec<String> {
        group
            .alts
            .iter()
            .map(|alt| {
                let alt: Vec<&Node> = alt.iter().collect();
                if negation {
                    // A negation's alternatives are tried with everything after the group.
                    let mut nodes = alt;
                    nodes.extend(at.after.iter().copied());
                    let out = compile_sequence(
                        &nodes,
                        &At { start: at.start, end: true, after: Vec::new(), dot_ok },
                    );
                    format!("{}(?:$|\\/)", out.src)
                } else {
                    let position = At { start: at.start, end: at.end, after: at.after.clone(), dot_ok };
                    compile_sequence(&alt, &position).src
                }
            })
            .collect()
    };
    let lead = if at.start && !at.dot_ok { NO_DOT } else { "" };
    if negation {
        if group.empty_last {
            return Compiled { src: format!("{lead}{SOME_RUN}"), magic: true };
        }
        let body = alternatives(at.dot_ok).join("|");
        return Compiled { src: format!("(?:(?!(?:{body})){lead}{ANY_RUN})"), magic: true };
    }
    let join = |alts: Vec<String>| {
        alts.into_iter().filter(|s| !whole || !s.is_empty()).collect::<Vec<_>>().join("|")
    };
    let body = join(alternatives(at.dot_ok));
    if whole && body.is_empty() {
        // An empty group that is the whole segment matches its own text.
        let mut src = String::new();
        for c in group.raw.chars() {
            escape_literal(&mut src, c);
        }
        return Compiled { src, magic: false };
    }
    let repeats = group.kind == '*' || group.kind == '+';
    if repeats && !at.dot_ok {
        // Only the first repetition may not start with a dot.
        let later = join(alternatives(true));
        if later != body {
            let optional = if group.kind == '*' { "?" } else { "" };
            return Compiled { src: format!("(?:(?:{body})(?:{later})*?){optional}"), magic: true };
        }
    }
    let suffix = if group.kind == '@' { String::new() } else { group.kind.to_string() };
    Compiled { src: format!("(?:{body}){suffix}"), magic: true }
}

/// minimatch answers these common shapes without a regex, and slightly differently: the
/// text after the wildcards is compared as written, backslashes included.
#[derive(Debug)]
enum Shortcut {
    /// `*`: any non-empty visible segment.
    Stars,
    /// `*.js`: a visible segment ending so.
    StarsThen(String),
    /// `???x`: a visible segment of that length ending so.
    Marks { length: usize, ending: String },
    /// `*.*`: a visible segment with a dot.
    StarDotStar,
    /// `.*`: a dot file.
    DotStar,
}

const NOT_SHORTCUT_TEXT: &str = "+@!?*[(";

fn shortcut(seg: &str) -> Option<Shortcut> {
    let stars = seg.len() - seg.trim_start_matches('*').len();
    let rest = &seg[stars..];
    let plain = |s: &str| !s.contains(|c| NOT_SHORTCUT_TEXT.contains(c));
    if stars > 0 && rest.is_empty() {
        return Some(Shortcut::Stars);
    }
    if stars > 0 && plain(rest) {
        return Some(Shortcut::StarsThen(rest.to_string()));
    }
    let marks = seg.len() - seg.trim_start_matches('?').len();
    if marks > 0 && plain(&seg[marks..]) {
        return Some(Shortcut::Marks { length: utf16_len(seg), ending: seg[marks..].to_string() });
    }
    let starred = |s: &str| !s.is_empty() && s.bytes().all(|b| b == b'*');
    if stars > 0 && rest.starts_with('.') && starred(&rest[1..]) {
        return Some(Shortcut::StarDotStar);
    }
    if seg.starts_with('.') && starred(&seg[1..]) {
        return Some(Shortcut::DotStar);
    }
    None
}

fn fold(s: &str, nocase: bool) -> std::borrow::Cow<'_, str> {
    if nocase { std::borrow::Cow::Owned(s.to_lowercase()) } else { std::borrow::Cow::Borrowed(s) }
}

#[derive(Debug)]
enum Segment {
    Globstar,
    Exact(String),
    Shortcut(Shortcut),
    Regex(fancy_regex::Regex),
}

impl Segment {
    fn compile(seg: &str, nocase: bool) -> Segment {
        if seg == "**" {
            return Segment::Globstar;
        }
        if seg.is_empty() {
            return Segment::Exact(String::new());
        }
        let chars: Vec<char> = seg.chars().collect();
        let nodes = parse_segment(&chars);
        let nodes: Vec<&Node> = nodes.iter().collect();
        let out = compile_sequence(&nodes, &At { start: true, end: true, after: Vec::new(), dot_ok: false });
        let case_matters = nocase && seg.to_uppercase() != seg.to_lowercase();
        if !out.magic && !case_matters {
            return Segment::Exact(unescape(&out.src));
        }
        if let Some(fast) = shortcut(seg) {
            return Segment::Shortcut(match fast {
                Shortcut::StarsThen(ending) => Shortcut::StarsThen(fold(&ending, nocase).into_owned()),
                Shortcut::Marks { length, ending } => {
                    Shortcut::Marks { length, ending: fold(&ending, nocase).into_owned() }
                }
                other => other,
            });
        }
        let built = fancy_regex::RegexBuilder::new(&format!("^{}$", out.src))
            .case_insensitive(nocase)
            .backtrack_limit(BACKTRACK_LIMIT)
            .build();
        match built {
            Ok(regex) => Segment::Regex(regex),
            // Unreachable for what the compiler emits; a segment that cannot be built never matches.
            Err(_) => Segment::Regex(fancy_regex::Regex::new(NEVER).expect("a valid regex")),
        }
    }

    fn matches(&self, file: &str, nocase: bool) -> bool {
        let visible = !file.starts_with('.');
        match self {
            Segment::Globstar => true,
            Segment::Exact(text) => file == text,
            Segment::Shortcut(Shortcut::Stars) => !file.is_empty() && visible,
            Segment::Shortcut(Shortcut::StarsThen(ending)) => {
                visible && fold(file, nocase).ends_with(ending.as_str())
            }
            Segment::Shortcut(Shortcut::Marks { length, ending }) => {
                utf16_len(file) == *length && visible && fold(file, nocase).ends_with(ending.as_str())
            }
            Segment::Shortcut(Shortcut::StarDotStar) => visible && file.contains('.'),
            Segment::Shortcut(Shortcut::DotStar) => file != "." && file != ".." && file.starts_with('.'),
            // Past the step limit: no match.
            Segment::Regex(regex) => regex.is_match(file).unwrap_or(false),
        }
    }
}

/// A non-magic segment's regex source back to its text (`\x` → `x`).
fn unescape(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && next != '/'
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// `x/../y` in a pattern means `y`; repeated `**` mean one.
fn simplify(parts: Vec<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for part in parts {
        let prev = out.last().copied();
        if part == "**" && prev == Some("**") {
            continue;
        }
        if part == ".." && prev.is_some_and(|p| !matches!(p, "" | ".." | "." | "**")) {
            out.pop();
            continue;
        }
        out.push(part);
    }
    if out.is_empty() { vec![""] } else { out }
}

fn split_path(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = path;
    loop {
        match rest.find('/') {
            None => {
                parts.push(rest);
                return parts;
            }
            Some(i) => {
                parts.push(&rest[..i]);
                rest = rest[i..].trim_start_matches('/');
            }
        }
    }
}

/// `**` takes zero or more whole segments, never a hidden one. Memoised on positions, so
/// many `**` stay polynomial.
fn match_parts(file: &[&str], pattern: &[Segment], nocase: bool) -> bool {
    let width = pattern.len() + 1;
    let mut seen: Vec<Option<bool>> = vec![None; (file.len() + 1) * width];
    fn walk(
        file: &[&str],
        pattern: &[Segment],
        nocase: bool,
        seen: &mut Vec<Option<bool>>,
        mut fi: usize,
        mut pi: usize,
    ) -> bool {
        let key = fi * (pattern.len() + 1) + pi;
        if let Some(known) = seen[key] {
            return known;
        }
        let result = loop {
            if fi >= file.len() || pi >= pattern.len() {
                break pi == pattern.len()
                    // A trailing slash may be left over: 'a/*' matches 'a/b/'.
                    && (fi == file.len() || (fi == file.len() - 1 && file[fi].is_empty()));
            }
            if let Segment::Globstar = pattern[pi] {
                if pi == pattern.len() - 1 {
                    break !file[fi..].iter().any(|f| f.starts_with('.'));
                }
                let mut found = false;
                for k in fi..file.len() {
                    if walk(file, pattern, nocase, seen, k, pi + 1) {
                        found = true;
                        break;
                    }
                    if file[k].starts_with('.') {
                        break;
                    }
                }
                break found;
            }
            if !pattern[pi].matches(file[fi], nocase) {
                break false;
            }
            fi += 1;
            pi += 1;
        };
        seen[key] = Some(result);
        result
    }
    walk(file, pattern, nocase, &mut seen, 0, 0)
}

/// A compiled glob.
#[derive(Debug)]
pub struct Glob {
    comment: bool,
    empty: bool,
    negate: bool,
    nocase: bool,
    alternatives: Vec<Vec<Segment>>,
}

impl Glob {
    pub fn new(pattern: &str, nocase: bool) -> Result<Glob, GlobError> {
        check_pattern(pattern)?;
        let comment = pattern.starts_with('#');
        let empty = pattern.is_empty();
        let bangs = pattern.len() - pattern.trim_start_matches('!').len();
        let mut alternatives = Vec::new();
        if !comment && !empty {
            let mut words = brace_expand(&pattern[bangs..]);
            let mut seen = std::collections::HashSet::new();
            words.retain(|w| seen.insert(w.clone()));
            for word in &words {
                let parts = simplify(split_path(word));
                alternatives.push(parts.into_iter().map(|seg| Segment::compile(seg, nocase)).collect());
            }
        }
        Ok(Glob { comment, empty, negate: bangs % 2 == 1, nocase, alternatives })
    }

    pub fn matches(&self, path: &str) -> bool {
        if self.comment {
            return false;
        }
        if self.empty {
            return path.is_empty();
        }
        let file = split_path(path);
        self.alternatives.iter().any(|pattern| match_parts(&file, pattern, self.nocase)) != self.negate
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn table(rows: &[(&str, &str, bool)], nocase: bool) {
        for (path, pattern, expected) in rows {
            let got = Glob::new(pattern, nocase).unwrap().matches(path);
            assert_eq!(got, *expected, "minimatch({path:?}, {pattern:?}, nocase: {nocase})");
        }
    }

    #[test]
    fn wildcards_dots_and_globstars() {
        table(
            &[
                ("abc", "a*c", true),
                ("a/b", "a*", false),
                ("a/b/", "a/*", true),
                ("", "*", false),
                ("ab", "*.*", false),
                ("a/", "a?", false),
                ("a/c", "a/**/c", true),
                ("a/.b/c", "a/**/c", false),
                ("/a", "**/a", true),
                ("axxb", "a**b", true),
                (".hidden", "?hidden", false),
                ("a//b", "a/b", true),
                ("x/a/b", "x/*/../a/b", true),
                ("x/y/a/b", "x/*/../a/b", false),
            ],
            false,
        );
    }

    #[test]
    fn classes_extglobs_negation_and_escapes() {
        table(
            &[
                ("-", "[a-]", true),
                ("x", "[z-a]", false),
                ("é", "[[:alpha:]]", true),
                ("[", "[", true),
                ("]", "[]]", true),
                ("users:get", "users[:]get", true),
                ("a&b", "a[&]b", true),
                ("foo.js.js", "*.!(js)", true),
                ("foo.js", "*.!(js)", false),
                ("abc", "+(a)!(b)+(c)", false),
                ("a(b", "@(a|a[(])b", true),
                ("+(a|b", "+(a|b", true),
                ("ab", "*(a|{b),c)}", true),
                ("abc", "!!a*", true),
                ("!ab", "\\!a*", true),
                ("#a", "\\#a", true),
                ("a{b,c}", "a\\{b,c\\}", true),
                ("a, b", "a, *", true),
            ],
            false,
        );
        table(&[("Å", "å", true), ("B", "[a-c]", true), ("X.JS", "*.js", true)], true);
    }

    #[test]
    fn hostile_patterns_end() {
        let pattern = "**/a/".repeat(30) + "z";
        assert!(!Glob::new(&pattern, false).unwrap().matches(&("a/".repeat(200) + "y")));
        let nested = Glob::new("*(*(a|aa)|*(aa|a))b", false).unwrap();
        assert!(!nested.matches(&"a".repeat(5000)));
    }
}
