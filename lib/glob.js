// Glob matching for EventFilter's `glob` content patterns. The original called
// `minimatch(value, pattern, {nocase})` (minimatch 10); this matcher gives the same answers
// without the dependency: bash-style brace expansion, `*`, `?`, `[...]` (ranges, `!`/`^`,
// POSIX classes), `**` path segments, extglobs, a leading `!` to negate, `#` comments,
// backslash escapes, and wildcards that never match a leading dot. Paths are split on '/',
// so `*` never crosses one. Only minimatch's default options plus `nocase` are supported.
'use strict';

// minimatch refuses longer patterns, with this error.
const MAX_PATTERN_LENGTH = 65536;
// Bounds for brace expansion, so '{a,b}{a,b}…' cannot exhaust memory.
const MAX_EXPANSIONS = 100000;
const MAX_EXPANSION_CHARS = 4000000;
// Extglobs nested deeper than this are plain text, as in minimatch (except that kinds
// which may repeat inside each other, e.g. `*(a|+(b))`, do not count).
const MAX_GROUP_DEPTH = 2;
const CACHE_LIMIT = 256;

const GLOBSTAR = Symbol('globstar');

function checkPattern(pattern) {
  if (typeof pattern !== 'string') throw new TypeError('invalid pattern');
  if (pattern.length > MAX_PATTERN_LENGTH) throw new TypeError('pattern is too long');
}

// ----------------------------------------------------------------------------------------
// Brace expansion, with bash's rules: `a{b,c}d`, nested sets, `{1..10..2}`, `{a..e}`,
// zero padding, `${...}` left alone, escaped `\{ \} \, \. \\` kept literal.

// Escaped characters become code points the pattern does not contain (from the private
// use area), so the scanner below cannot mistake them for syntax; they are restored at the end.
function pickMarks(str) {
  const marks = {};
  let cp = 0xe000;
  for (const name of ['backslash', 'open', 'close', 'comma', 'period']) {
    while (str.includes(String.fromCharCode(cp))) cp++;
    marks[name] = String.fromCharCode(cp++);
  }
  return marks;
}

// The brace pair to expand first: the first '{' with its matching '}'; when that '{' is
// never closed, the complete pair that opens earliest.
function findPair(str) {
  const open = [];
  let best = null;
  for (let i = 0; i < str.length; i++) {
    if (str[i] === '{') {
      open.push(i);
    } else if (str[i] === '}' && open.length > 0) {
      const start = open.pop();
      if (open.length === 0) return { start, end: i };
      if (best === null || start < best.start) best = { start, end: i };
    }
  }
  return best;
}

// Splits a set's body on the commas that are not inside a nested pair.
function splitOptions(body) {
  const options = [];
  let carry = '';
  let rest = body;
  for (;;) {
    const pair = findPair(rest);
    const pieces = (pair ? rest.slice(0, pair.start) : rest).split(',');
    pieces[0] = carry + pieces[0];
    if (!pair) return options.concat(pieces);
    carry = pieces.pop() + rest.slice(pair.start, pair.end + 1);
    options.push(...pieces);
    rest = rest.slice(pair.end + 1);
  }
}

function sequenceValues(body) {
  const numeric = /^-?\d+\.\.-?\d+(?:\.\.-?\d+)?$/.test(body);
  const alpha = !numeric && /^[a-zA-Z]\.\.[a-zA-Z](?:\.\.-?\d+)?$/.test(body);
  if (!numeric && !alpha) return null;
  const parts = body.split('..');
  const value = (s) => (alpha && !/^-?\d+$/.test(s) ? s.charCodeAt(0) : parseInt(s, 10));
  const from = value(parts[0]);
  const to = value(parts[1]);
  const step = parts.length === 3 ? Math.max(Math.abs(parseInt(parts[2], 10)), 1) : 1;
  const width = Math.max(parts[0].length, parts[1].length);
  const padded = parts.some((p) => /^-?0\d/.test(p));
  const out = [];
  const down = to < from;
  for (let n = from; down ? n >= to : n <= to; n += down ? -step : step) {
    if (out.length >= MAX_EXPANSIONS) break;
    if (alpha) {
      // bash skips the backslash between 'Z' and 'a', leaving an empty word.
      const ch = String.fromCharCode(n);
      out.push(ch === '\\' ? '' : ch);
    } else {
      let digits = String(Math.abs(n));
      if (padded) digits = digits.padStart(n < 0 ? width - 1 : width, '0');
      out.push(n < 0 ? '-' + digits : digits);
    }
  }
  return out;
}

// Every head followed by every tail (heads vary slowest), within the bounds.
function cross(heads, tails) {
  const out = [];
  let chars = 0;
  for (const head of heads) {
    for (const tail of tails) {
      const word = head + tail;
      if (out.length >= MAX_EXPANSIONS || chars + word.length > MAX_EXPANSION_CHARS) return out;
      out.push(word);
      chars += word.length;
    }
  }
  return out;
}

function expandMarked(input, top, marks) {
  let words = [''];
  let str = input;
  // bash drops empty words, but only when the first set it meets at the top is a list.
  let dropEmpty = false;
  let first = true;
  for (;;) {
    const pair = findPair(str);
    if (!pair) {
      words = cross(words, [str]);
      break;
    }
    const pre = str.slice(0, pair.start);
    const body = str.slice(pair.start + 1, pair.end);
    const post = str.slice(pair.end + 1);
    if (pre.endsWith('$')) {
      // `${...}` is a shell variable, never a set.
      words = cross(words, [pre + '{' + body + '}']);
      first = false;
      str = post;
      if (str === '') break;
      continue;
    }
    const sequence = sequenceValues(body);
    if (sequence === null && !body.includes(',')) {
      // `{a}` is literal. bash then lets a later ',' and '}' extend the set: '{a},b}'.
      if (/,(?!,).*\}/.test(post)) {
        str = pre + '{' + body + marks.close + post;
        top = true;
        continue;
      }
      words = cross(words, [str]);
      break;
    }
    if (first) {
      dropEmpty = top && sequence === null;
      first = false;
    }
    let values;
    if (sequence !== null) {
      values = sequence;
    } else {
      let options = splitOptions(body);
      if (options.length === 1) {
        // Only nested commas: 'x{{a,b}}y' keeps the outer braces, 'x{a}y' and 'x{b}y'.
        options = expandMarked(options[0], false, marks).map((w) => '{' + w + '}');
      }
      values = [];
      for (const option of options) {
        values.push(...expandMarked(option, false, marks));
        if (values.length >= MAX_EXPANSIONS) break;
      }
    }
    words = cross(words, values.map((v) => pre + v));
    str = post;
    if (str === '') break;
  }
  return dropEmpty ? words.filter((w) => w !== '') : words;
}

function braceExpand(pattern) {
  checkPattern(pattern);
  // Without a complete '{...}' (on one line) there is nothing to expand.
  if (!/\{[^{\n\r\u2028\u2029]*\}/.test(pattern)) return [pattern];
  const marks = pickMarks(pattern);
  const escapes = { '\\': marks.backslash, '{': marks.open, '}': marks.close, ',': marks.comma, '.': marks.period };
  let str = pattern.replace(/\\([\\{},.])/g, (_, ch) => escapes[ch]);
  // bash keeps a leading '{}' as text.
  if (str.startsWith('{}')) str = marks.open + marks.close + str.slice(2);
  const restore = new Map([
    [marks.backslash, '\\'],
    [marks.open, '{'],
    [marks.close, '}'],
    [marks.comma, ','],
    [marks.period, '.'],
  ]);
  const unmark = new RegExp(`[${[...restore.keys()].join('')}]`, 'g');
  return expandMarked(str, true, marks).map((w) => w.replace(unmark, (m) => restore.get(m)));
}

// ----------------------------------------------------------------------------------------
// One path segment: parsed into text and extglob groups, then compiled to a RegExp.

const GROUP_KINDS = '!?+*@';
// A group kind that may sit inside another without counting toward MAX_GROUP_DEPTH.
const ABSORBS = { '!': '?@', '?': '?@', '@': '?@', '*': '*+?@', '+': '+@?*' };

// Text keeps `[...]` and escapes as written (they are interpreted when compiled); the parser
// only needs to know when '(' '|' ')' are escaped or class members rather than syntax.
// Returns true for such characters.
function createScanner() {
  let escaped = false;
  let classAt = -1;
  let negated = false;
  return (c, i) => {
    if (escaped || c === '\\') {
      escaped = !escaped;
      return true;
    }
    if (classAt >= 0) {
      if (i === classAt + 1) {
        if (c === '!' || c === '^') negated = true;
      } else if (c === ']' && !(i === classAt + 2 && negated)) {
        classAt = -1;
      }
      return true;
    }
    if (c === '[') {
      classAt = i;
      negated = false;
      return true;
    }
    return false;
  };
}

// Reads the group whose '(' is at `open`. Returns {node, next} or null when it is never
// closed (the caller then treats the rest of the segment as text).
function readGroup(src, kind, open, depth) {
  const alts = [];
  let nodes = [];
  let text = '';
  const plain = createScanner();
  for (let i = open + 1; i < src.length; i++) {
    const c = src[i];
    if (plain(c, i)) {
      text += c;
      continue;
    }
    const absorbed = ABSORBS[kind].includes(c);
    if (GROUP_KINDS.includes(c) && src[i + 1] === '(' && (depth <= MAX_GROUP_DEPTH || absorbed)) {
      if (text) nodes.push({ text });
      text = '';
      const inner = readGroup(src, c, i + 1, depth + (absorbed ? 0 : 1));
      if (inner === null) return null;
      nodes.push(inner.node);
      i = inner.next - 1;
      continue;
    }
    if (c === '|' || c === ')') {
      // minimatch's `!(a|)` rule: an empty last alternative makes the group "anything".
      const emptyLast = text === '';
      if (text) nodes.push({ text });
      text = '';
      alts.push(nodes);
      nodes = [];
      if (c === ')') {
        return { node: { kind, alts, emptyLast, raw: src.slice(open - 1, i + 1) }, next: i + 1 };
      }
      continue;
    }
    text += c;
  }
  return null;
}

function parseSegment(src) {
  const nodes = [];
  let text = '';
  const plain = createScanner();
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (!plain(c, i) && GROUP_KINDS.includes(c) && src[i + 1] === '(') {
      const group = readGroup(src, c, i + 1, 1);
      if (group === null) {
        text += src.slice(i);
        break;
      }
      if (text) nodes.push({ text });
      text = '';
      nodes.push(group.node);
      i = group.next - 1;
      continue;
    }
    text += c;
  }
  if (text) nodes.push({ text });
  return nodes;
}

const POSIX_CLASSES = {
  alnum: ['\\p{L}\\p{Nl}\\p{Nd}', true],
  alpha: ['\\p{L}\\p{Nl}', true],
  ascii: ['\\x00-\\x7f', false],
  blank: ['\\p{Zs}\\t', true],
  cntrl: ['\\p{Cc}', true],
  digit: ['\\p{Nd}', true],
  // minimatch's tables: [:graph:] as "not space or other", [:print:] as "other".
  graph: ['\\p{Z}\\p{C}', true, 'negated'],
  lower: ['\\p{Ll}', true],
  print: ['\\p{C}', true],
  punct: ['\\p{P}', true],
  space: ['\\p{Z}\\t\\r\\n\\v\\f', true],
  upper: ['\\p{Lu}', true],
  word: ['\\p{L}\\p{Nl}\\p{Nd}\\p{Pc}', true],
  xdigit: ['A-Fa-f0-9', false],
};

const escapeRegex = (s) => s.replace(/[-[\]{}()*+?.,\\^$|#\s]/g, '\\$&');
const escapeMember = (s) => s.replace(/[[\]\\-]/g, '\\$&');
const NEVER = '$.';

// Reads the bracket expression at src[at] === '['. Returns {src, length, magic, unicode},
// or null when it is not closed ('[' is then literal). An impossible class matches
// nothing and takes the rest of the text with it, as in minimatch.
function readClass(src, at) {
  const members = [];
  const excluded = [];
  let unicode = false;
  let negate = false;
  let rangeFrom = '';
  let started = false;
  let escaped = false;
  let i = at + 1;
  if (src[i] === '!' || src[i] === '^') {
    negate = true;
    i++;
  }
  const poison = { src: NEVER, length: src.length - at, magic: true, unicode: false };
  for (; i < src.length; i++) {
    const c = src[i];
    if (c === ']' && started && !escaped) {
      if (members.length === 0 && excluded.length === 0) return poison;
      const length = i + 1 - at;
      if (!negate && excluded.length === 0 && members.length === 1 && /^\\?.$/.test(members[0])) {
        // '[x]' is one literal character, not a wildcard.
        return { src: escapeRegex(members[0].slice(-1)), length, magic: false, unicode: false };
      }
      const within = '[' + (negate ? '^' : '') + members.join('') + ']';
      const outside = '[' + (negate ? '' : '^') + excluded.join('') + ']';
      const either = members.length && excluded.length ? `(${within}|${outside})` : members.length ? within : outside;
      return { src: either, length, magic: true, unicode };
    }
    started = true;
    if (c === '\\' && !escaped) {
      escaped = true;
      continue;
    }
    if (c === '[' && !escaped) {
      const named = /^\[:([a-z]+):\]/.exec(src.slice(i, i + 10));
      if (named && POSIX_CLASSES[named[1]]) {
        if (rangeFrom) return poison;
        const [set, needsU, negated] = POSIX_CLASSES[named[1]];
        (negated ? excluded : members).push(set);
        unicode = unicode || needsU;
        i += named[0].length - 1;
        continue;
      }
    }
    escaped = false;
    if (rangeFrom) {
      // Backwards ranges are dropped; the rest of the class still counts.
      if (c > rangeFrom) members.push(escapeMember(rangeFrom) + '-' + escapeMember(c));
      else if (c === rangeFrom) members.push(escapeMember(c));
      rangeFrom = '';
    } else if (src[i + 1] === '-' && src[i + 2] === ']') {
      members.push(escapeMember(c + '-'));
      i++;
    } else if (src[i + 1] === '-') {
      rangeFrom = c;
      i++;
    } else {
      members.push(escapeMember(c));
    }
  }
  return null;
}

const ANY_ONE = '[^/]';
const ANY_RUN = '[^/]*?';
const SOME_RUN = '[^/]+?';
const NO_DOT = '(?!\\.)';
const NOT_DOT_OR_DOTDOT = '(?!(?:^|/)\\.\\.?(?:$|/))';
// Escaped characters that keep their backslash; minimatch passes the others through raw.
const KEEP_ESCAPED = new Set('().*{}+?[]^$\\!');

function compileText(text, nonEmptyStars) {
  let src = '';
  let magic = false;
  let unicode = false;
  let inStars = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '*') {
      if (!inStars) src += nonEmptyStars && /^\*+$/.test(text) ? SOME_RUN : ANY_RUN;
      inStars = true;
      magic = true;
      continue;
    }
    inStars = false;
    if (c === '\\') {
      if (i === text.length - 1) {
        src += '\\\\';
      } else {
        i++;
        src += (KEEP_ESCAPED.has(text[i]) ? '\\' : '') + text[i];
      }
    } else if (c === '?') {
      src += ANY_ONE;
      magic = true;
    } else {
      const cls = c === '[' ? readClass(text, i) : null;
      if (cls === null) {
        src += escapeRegex(c);
      } else {
        src += cls.src;
        magic = magic || cls.magic;
        unicode = unicode || cls.unicode;
        i += cls.length - 1;
      }
    }
  }
  return { src, magic, unicode };
}

const startsWithClassOrDot = (src, at) => src[at] === '[' || src[at] === '.';

// A sequence of nodes. `at.start`/`at.end`: whether it begins/ends the segment;
// `at.after`: what follows it in the segment (a `!(...)` must look ahead over it);
// `at.dotOk`: inside the second and later repetitions of `*(...)`/`+(...)`.
function compileSequence(nodes, at) {
  let src = '';
  let magic = false;
  let unicode = false;
  const textOnly = nodes.every((n) => n.text !== undefined);
  let leadingNegations = true;
  nodes.forEach((node, k) => {
    const last = k === nodes.length - 1;
    const out =
      node.text !== undefined
        ? compileText(node.text, at.start && at.end && textOnly)
        : compileGroup(node, {
            start: at.start && leadingNegations,
            end: at.end && last,
            after: nodes.slice(k + 1).concat(at.after),
            dotOk: at.dotOk,
          });
    if (node.kind !== '!') leadingNegations = false;
    src += out.src;
    magic = magic || out.magic;
    unicode = unicode || out.unicode;
  });
  if (at.start && nodes.length > 0 && nodes[0].text !== undefined) {
    const onlyDots = nodes.length === 1 && (nodes[0].text === '.' || nodes[0].text === '..');
    if (!onlyDots) {
      const guardTraversal =
        (at.dotOk && startsWithClassOrDot(src, 0)) ||
        (src.startsWith('\\.') && startsWithClassOrDot(src, 2)) ||
        (src.startsWith('\\.\\.') && startsWithClassOrDot(src, 4));
      if (guardTraversal) src = NOT_DOT_OR_DOTDOT + src;
      else if (!at.dotOk && startsWithClassOrDot(src, 0)) src = NO_DOT + src;
    }
  }
  return { src, magic, unicode };
}

function compileGroup(group, at) {
  let unicode = false;
  const whole = at.start && at.end;
  const alternatives = (dotOk) =>
    group.alts.map((alt) => {
      // A negation's alternatives are tried together with everything after the group.
      const out =
        group.kind === '!'
          ? compileSequence(alt.concat(at.after), { start: at.start, end: true, after: [], dotOk })
          : compileSequence(alt, { start: at.start, end: at.end, after: at.after, dotOk });
      unicode = unicode || out.unicode;
      return group.kind === '!' ? out.src + '(?:$|\\/)' : out.src;
    });

  if (group.kind === '!') {
    if (group.emptyLast) return { src: (at.start && !at.dotOk ? NO_DOT : '') + SOME_RUN, magic: true, unicode };
    const body = alternatives(at.dotOk).join('|');
    const lead = at.start && !at.dotOk ? NO_DOT : '';
    return { src: `(?:(?!(?:${body}))${lead}${ANY_RUN})`, magic: true, unicode };
  }

  let body = alternatives(at.dotOk)
    .filter((s) => !whole || s !== '')
    .join('|');
  if (whole && body === '') {
    // An empty group that is the whole segment matches its own text.
    return { src: group.raw, magic: false, unicode: false, literal: true };
  }
  const repeats = group.kind === '*' || group.kind === '+';
  let firstThenRest = '';
  if (repeats && !at.dotOk) {
    // Only the first repetition may not start with a dot.
    const laterBody = alternatives(true)
      .filter((s) => !whole || s !== '')
      .join('|');
    if (laterBody !== body) firstThenRest = laterBody;
  }
  if (firstThenRest) {
    body = `(?:${body})(?:${firstThenRest})*?`;
    return { src: `(?:${body})${group.kind === '*' ? '?' : ''}`, magic: true, unicode };
  }
  const suffix = group.kind === '@' ? '' : group.kind;
  return { src: `(?:${body})${suffix}`, magic: true, unicode };
}

// minimatch answers these common shapes without a RegExp, and slightly differently: the
// text after the wildcards is compared as written, backslashes included.
const visible = (f) => !f.startsWith('.');

function shortcut(seg, nocase) {
  const fold = nocase ? (s) => s.toLowerCase() : (s) => s;
  let m;
  if (/^\*+$/.test(seg)) return (f) => f.length > 0 && visible(f);
  if ((m = /^\*+([^+@!?*[(]*)$/.exec(seg))) {
    const ending = fold(m[1]);
    return (f) => visible(f) && fold(f).endsWith(ending);
  }
  if ((m = /^\?+([^+@!?*[(]*)?$/.exec(seg))) {
    const ending = fold(m[1] ?? '');
    return (f) => f.length === seg.length && visible(f) && fold(f).endsWith(ending);
  }
  if (/^\*+\.\*+$/.test(seg)) return (f) => visible(f) && f.includes('.');
  if (/^\.\*+$/.test(seg)) return (f) => f !== '.' && f !== '..' && f.startsWith('.');
  return null;
}

// A segment matcher: GLOBSTAR, an exact string, or an object with test(segment).
function compileSegment(seg, nocase) {
  if (seg === '**') return GLOBSTAR;
  if (seg === '') return '';
  const out = compileSequence(parseSegment(seg), { start: true, end: true, after: [], dotOk: false });
  const caseMatters = nocase && seg.toUpperCase() !== seg.toLowerCase();
  if (!out.magic && !caseMatters) return out.src.replace(/\\([^/])/g, '$1');
  const fast = shortcut(seg, nocase);
  if (fast) return { test: fast };
  return new RegExp(`^${out.src}$`, (nocase ? 'i' : '') + (out.unicode ? 'u' : ''));
}

// ----------------------------------------------------------------------------------------
// Whole paths

// 'x/../y' in a pattern means 'y'; repeated '**' mean one.
function simplify(parts) {
  const out = [];
  for (const part of parts) {
    const prev = out[out.length - 1];
    if (part === '**' && prev === '**') continue;
    if (part === '..' && prev !== undefined && prev !== '' && prev !== '..' && prev !== '.' && prev !== '**') {
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.length > 0 ? out : [''];
}

const hidden = (seg) => seg.startsWith('.');

// '**' takes zero or more whole segments, never a hidden one. Memoised on positions, so
// many '**' stay polynomial.
function matchParts(file, pattern) {
  const seen = new Map();
  const from = (fi, pi) => {
    const key = fi * (pattern.length + 1) + pi;
    let result = seen.get(key);
    if (result === undefined) {
      result = walk(fi, pi);
      seen.set(key, result);
    }
    return result;
  };
  const walk = (fi, pi) => {
    for (; fi < file.length && pi < pattern.length; fi++, pi++) {
      const p = pattern[pi];
      if (p === GLOBSTAR) {
        if (pi === pattern.length - 1) return !file.slice(fi).some(hidden);
        for (let k = fi; k < file.length; k++) {
          if (from(k, pi + 1)) return true;
          if (hidden(file[k])) return false;
        }
        return false;
      }
      if (!(typeof p === 'string' ? file[fi] === p : p.test(file[fi]))) return false;
    }
    if (pi === pattern.length) {
      // A trailing slash may be left over: 'a/*' matches 'a/b/'.
      return fi === file.length || (fi === file.length - 1 && file[fi] === '');
    }
    return false;
  };
  return from(0, 0);
}

class Glob {
  constructor(pattern, nocase) {
    this.comment = pattern.startsWith('#');
    this.empty = pattern === '';
    let bangs = 0;
    while (pattern[bangs] === '!') bangs++;
    this.negate = bangs % 2 === 1;
    this.alternatives =
      this.comment || this.empty
        ? []
        : [...new Set(braceExpand(pattern.slice(bangs)))].map((p) =>
            simplify(p.split(/\/+/)).map((seg) => compileSegment(seg, nocase)),
          );
  }

  match(path) {
    if (this.comment) return false;
    if (this.empty) return path === '';
    const file = path.split(/\/+/);
    return this.alternatives.some((pattern) => matchParts(file, pattern)) !== this.negate;
  }
}

// EventFilter matches the same few patterns against every event.
const cache = new Map();

/**
 * minimatch(path, pattern, {nocase}): whether `path` matches the glob `pattern`.
 * A non-string pattern throws TypeError('invalid pattern'), as in minimatch.
 */
function minimatch(path, pattern, options) {
  checkPattern(pattern);
  if (pattern.startsWith('#')) return false;
  const nocase = !!(options && options.nocase);
  const key = (nocase ? 'i:' : '-:') + pattern;
  let glob = cache.get(key);
  if (glob === undefined) {
    glob = new Glob(pattern, nocase);
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value);
    cache.set(key, glob);
  }
  return glob.match(path);
}

module.exports = { minimatch, braceExpand };
