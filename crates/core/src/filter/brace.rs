//! Brace expansion with bash's rules, as minimatch applies it to a glob before matching:
//! `a{b,c}d`, nested sets, sequences (`{1..10..2}`, `{a..e}`, zero padding), `${...}` left
//! alone, escaped `\{ \} \, \. \\` kept literal (their backslashes dropped), a leading `{}`
//! kept as text. The output is bounded (`MAX_EXPANSIONS` words, `MAX_EXPANSION_CHARS`
//! characters), so a hostile `{a,b}{a,b}…` cannot exhaust memory.

/// The most words one pattern expands to.
pub const MAX_EXPANSIONS: usize = 100_000;
const MAX_EXPANSION_CHARS: usize = 4_000_000;

/// Escaped characters become code points the pattern does not contain (from the private
/// use area), so the scanner cannot mistake them for syntax; they are restored at the end.
struct Marks {
    backslash: char,
    open: char,
    close: char,
    comma: char,
    period: char,
}

impl Marks {
    fn pick(text: &[char]) -> Marks {
        let mut next = 0xE000u32;
        let mut take = || loop {
            let c = char::from_u32(next).unwrap_or('\u{E000}');
            next += 1;
            if !text.contains(&c) {
                return c;
            }
        };
        Marks { backslash: take(), open: take(), close: take(), comma: take(), period: take() }
    }

    fn restore(&self, c: char) -> char {
        match c {
            c if c == self.backslash => '\\',
            c if c == self.open => '{',
            c if c == self.close => '}',
            c if c == self.comma => ',',
            c if c == self.period => '.',
            c => c,
        }
    }
}

const LINE_BREAKS: [char; 4] = ['\n', '\r', '\u{2028}', '\u{2029}'];

/// Whether there is a complete `{...}` on one line, with no `{` inside.
fn has_set(text: &[char]) -> bool {
    let mut open = false;
    for &c in text {
        match c {
            '{' => open = true,
            '}' if open => return true,
            c if LINE_BREAKS.contains(&c) => open = false,
            _ => {}
        }
    }
    false
}

/// The pair to expand first: the first `{` with its matching `}`; when that `{` is never
/// closed, the complete pair that opens earliest.
fn find_pair(text: &[char]) -> Option<(usize, usize)> {
    let mut open = Vec::new();
    let mut best: Option<(usize, usize)> = None;
    for (i, &c) in text.iter().enumerate() {
        if c == '{' {
            open.push(i);
        } else if c == '}' {
            let Some(start) = open.pop() else { continue };
            if open.is_empty() {
                return Some((start, i));
            }
            if best.is_none_or(|(s, _)| start < s) {
                best = Some((start, i));
            }
        }
    }
    best
}

/// A set's body split on the commas that are not inside a nested pair.
fn split_options(body: &[char]) -> Vec<Vec<char>> {
    let mut options: Vec<Vec<char>> = Vec::new();
    let mut carry: Vec<char> = Vec::new();
    let mut rest = body;
    loop {
        let pair = find_pair(rest);
        let head = match pair {
            Some((start, _)) => &rest[..start],
            None => rest,
        };
        let mut pieces: Vec<Vec<char>> = head.split(|&c| c == ',').map(<[char]>::to_vec).collect();
        let mut first = std::mem::take(&mut carry);
        first.extend_from_slice(&pieces[0]);
        pieces[0] = first;
        let Some((start, end)) = pair else {
            options.extend(pieces);
            return options;
        };
        let mut last = pieces.pop().unwrap_or_default();
        last.extend_from_slice(&rest[start..=end]);
        carry = last;
        options.extend(pieces);
        rest = &rest[end + 1..];
    }
}

fn is_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `parseInt` of a decimal integer, saturated far beyond anything a sequence can reach.
fn parse_int(s: &str) -> i128 {
    s.parse::<i128>().unwrap_or(if s.starts_with('-') { -(1 << 100) } else { 1 << 100 })
}

/// The words of a `{from..to[..step]}` sequence, or None when `body` is not one.
fn sequence_values(body: &[char]) -> Option<Vec<String>> {
    let text: String = body.iter().collect();
    let parts: Vec<&str> = text.split("..").collect();
    if parts.len() != 2 && parts.len() != 3 {
        return None;
    }
    let letter = |s: &str| s.len() == 1 && s.as_bytes()[0].is_ascii_alphabetic();
    let step_ok = parts.len() == 2 || is_int(parts[2]);
    let numeric = step_ok && is_int(parts[0]) && is_int(parts[1]);
    let alpha = !numeric && step_ok && letter(parts[0]) && letter(parts[1]);
    if !numeric && !alpha {
        return None;
    }
    let value = |s: &str| if alpha { i128::from(s.as_bytes()[0]) } else { parse_int(s) };
    let (from, to) = (value(parts[0]), value(parts[1]));
    let step = if parts.len() == 3 { parse_int(parts[2]).abs().max(1) } else { 1 };
    let width = parts[0].len().max(parts[1].len());
    let padded = parts.iter().any(|p| {
        let digits = p.strip_prefix('-').unwrap_or(p).as_bytes();
        digits.len() >= 2 && digits[0] == b'0' && digits[1].is_ascii_digit()
    });
    let mut out = Vec::new();
    let down = to < from;
    let mut n = from;
    while (down && n >= to) || (!down && n <= to) {
        if out.len() >= MAX_EXPANSIONS {
            break;
        }
        if alpha {
            // bash skips the backslash between 'Z' and 'a', leaving an empty word.
            let c = char::from_u32(n as u32).unwrap_or('\0');
            out.push(if c == '\\' { String::new() } else { c.to_string() });
        } else {
            let mut digits = n.abs().to_string();
            if padded {
                let target = if n < 0 { width.saturating_sub(1) } else { width };
                while digits.len() < target {
                    digits.insert(0, '0');
                }
            }
            out.push(if n < 0 { format!("-{digits}") } else { digits });
        }
        n = if down { n - step } else { n + step };
    }
    Some(out)
}

/// Every head followed by every tail (heads vary slowest), within the bounds.
fn cross(heads: &[Vec<char>], tails: &[Vec<char>]) -> Vec<Vec<char>> {
    let mut out = Vec::new();
    let mut chars = 0;
    for head in heads {
        for tail in tails {
            let length = head.len() + tail.len();
            if out.len() >= MAX_EXPANSIONS || chars + length > MAX_EXPANSION_CHARS {
                return out;
            }
            let mut word = Vec::with_capacity(length);
            word.extend_from_slice(head);
            word.extend_from_slice(tail);
            out.push(word);
            chars += length;
        }
    }
    out
}

/// Whether `post` has a `,` not followed by `,`, and then a `}` on the same line: a literal
/// `{a}` then extends to that `}` (bash reads `{a},b}` as one set).
fn extends_set(post: &[char]) -> bool {
    post.iter().enumerate().any(|(i, &c)| {
        c == ','
            && post.get(i + 1) != Some(&',')
            && post[i + 1..].iter().take_while(|c| !LINE_BREAKS.contains(c)).any(|&c| c == '}')
    })
}

fn concat(parts: &[&[char]]) -> Vec<char> {
    parts.concat()
}

fn expand_marked(input: &[char], mut top: bool, marks: &Marks) -> Vec<Vec<char>> {
    let mut words: Vec<Vec<char>> = vec![Vec::new()];
    let mut text: Vec<char> = input.to_vec();
    // bash drops empty words, but only when the first set it meets at the top is a list.
    let mut drop_empty = false;
    let mut first = true;
    loop {
        let Some((start, end)) = find_pair(&text) else {
            words = cross(&words, &[text]);
            break;
        };
        let pre = &text[..start];
        let body = &text[start + 1..end];
        let post = &text[end + 1..];
        if pre.last() == Some(&'$') {
            // `${...}` is a shell variable, never a set.
            words = cross(&words, &[concat(&[pre, &['{'], body, &['}']])]);
            first = false;
            text = post.to_vec();
            if text.is_empty() {
                break;
            }
            continue;
        }
        let sequence = sequence_values(body);
        if sequence.is_none() && !body.contains(&',') {
            // `{a}` is literal, unless a later `,` and `}` extend it.
            if extends_set(post) {
                text = concat(&[pre, &['{'], body, &[marks.close], post]);
                top = true;
                continue;
            }
            words = cross(&words, &[text]);
            break;
        }
        if first {
            drop_empty = top && sequence.is_none();
            first = false;
        }
        let values: Vec<Vec<char>> = match sequence {
            Some(values) => values.into_iter().map(|v| v.chars().collect()).collect(),
            None => {
                let mut options = split_options(body);
                if options.len() == 1 {
                    // Only nested commas: 'x{{a,b}}y' keeps the outer braces.
                    options = expand_marked(&options[0], false, marks)
                        .into_iter()
                        .map(|w| concat(&[&['{'], &w, &['}']]))
                        .collect();
                }
                let mut values = Vec::new();
                for option in &options {
                    values.extend(expand_marked(option, false, marks));
                    if values.len() >= MAX_EXPANSIONS {
                        break;
                    }
                }
                values
            }
        };
        let tails: Vec<Vec<char>> = values.iter().map(|v| concat(&[pre, v])).collect();
        words = cross(&words, &tails);
        text = post.to_vec();
        if text.is_empty() {
            break;
        }
    }
    if drop_empty {
        words.retain(|w| !w.is_empty());
    }
    words
}

/// The words `pattern` expands to (the pattern itself when it has no set).
pub fn brace_expand(pattern: &str) -> Vec<String> {
    let chars: Vec<char> = pattern.chars().collect();
    if !has_set(&chars) {
        return vec![pattern.to_string()];
    }
    let marks = Marks::pick(&chars);
    let mut text = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let escaped = match (chars[i], chars.get(i + 1)) {
            ('\\', Some('\\')) => Some(marks.backslash),
            ('\\', Some('{')) => Some(marks.open),
            ('\\', Some('}')) => Some(marks.close),
            ('\\', Some(',')) => Some(marks.comma),
            ('\\', Some('.')) => Some(marks.period),
            _ => None,
        };
        match escaped {
            Some(mark) => {
                text.push(mark);
                i += 2;
            }
            None => {
                text.push(chars[i]);
                i += 1;
            }
        }
    }
    // bash keeps a leading '{}' as text.
    if text.starts_with(&['{', '}']) {
        text[0] = marks.open;
        text[1] = marks.close;
    }
    expand_marked(&text, true, &marks)
        .into_iter()
        .map(|word| word.into_iter().map(|c| marks.restore(c)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::brace_expand;

    fn expand(pattern: &str) -> Vec<String> {
        brace_expand(pattern)
    }

    #[test]
    fn sets_sequences_and_literals_expand_as_bash_does() {
        assert_eq!(expand("a{b,c}d"), ["abd", "acd"]);
        assert_eq!(
            expand("a{b,c{d,e},{f,g}h}x{y,z}"),
            ["abxy", "abxz", "acdxy", "acdxz", "acexy", "acexz", "afhxy", "afhxz", "aghxy", "aghxz"]
        );
        assert_eq!(expand("a{1..3}"), ["a1", "a2", "a3"]);
        assert_eq!(expand("{3..1}"), ["3", "2", "1"]);
        assert_eq!(expand("{a..e..2}"), ["a", "c", "e"]);
        assert_eq!(expand("x{01..10..3}"), ["x01", "x04", "x07", "x10"]);
        assert_eq!(expand("a{,b}"), ["a", "ab"]);
        assert_eq!(expand("-v{,,,,}"), ["-v", "-v", "-v", "-v", "-v"]);
        assert_eq!(expand("{a,b}${c}"), ["a${c}", "b${c}"]);
        assert_eq!(expand("a{b}c"), ["a{b}c"]);
        assert_eq!(expand("a\\{b,c}"), ["a{b,c}"]);
        assert_eq!(expand("{a\\,b}"), ["{a,b}"]);
        assert_eq!(expand("{},a}b"), ["{},a}b"]);
        assert_eq!(expand("{{a,b}"), ["{a", "{b"]);
        assert_eq!(expand("z{a,b},c}d"), ["za,c}d", "zb,c}d"]);
        assert_eq!(expand("{-2..2}"), ["-2", "-1", "0", "1", "2"]);
        assert_eq!(expand("{Y..b}"), ["Y", "Z", "[", "", "]", "^", "_", "`", "a", "b"]);
    }

    #[test]
    fn hostile_patterns_stay_bounded() {
        let many = expand(&"{a,b}".repeat(20));
        assert_eq!(many.len(), super::MAX_EXPANSIONS);
        assert_eq!(many[0], "a".repeat(20));
        assert!(expand("{1..99999999999999999999999}").len() <= super::MAX_EXPANSIONS);
    }
}
