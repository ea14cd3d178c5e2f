// Tool-name patterns for ToolRouter, AccessController and RateLimiter (seed API; the original
// package has none of them). Tool names are ':'-separated segments, e.g. 'user:profile:read'.
//
//   *    any run of characters inside one segment (never ':'), possibly empty
//   **   any run of characters, ':' included (a run of three or more stars is the same as '**')
//   ?    exactly one character other than ':'
//
// Everything else is literal: '.', '+', '(', '[', '\' and the like have no special meaning,
// so 'a.b' matches only 'a.b'. There is no escape syntax because tool names never need one.
//
// Decisions where the seed is silent:
// - Matching runs over code points, so '?' matches one emoji, not half of one.
// - Patterns are matched by a small NFA simulation rather than a RegExp: several '**' in one
//   pattern make a backtracking RegExp polynomial in the name's length, and names come from
//   untrusted script code. The simulation costs at most (name length × pattern length) steps.
// - A matcher given something other than a string answers false instead of throwing, so a
//   malformed call is simply unmatched; validating names is the caller's job.
'use strict';

const LITERAL = 0;
const ONE_CHAR = 1; // '?'
const IN_SEGMENT = 2; // '*'
const ANYTHING = 3; // '**'

function tokenize(pattern) {
  const tokens = [];
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '*') {
      let end = i;
      while (end + 1 < chars.length && chars[end + 1] === '*') end++;
      tokens.push({ kind: end > i ? ANYTHING : IN_SEGMENT });
      i = end;
    } else if (ch === '?') {
      tokens.push({ kind: ONE_CHAR });
    } else {
      tokens.push({ kind: LITERAL, char: ch });
    }
  }
  return tokens;
}

function isStar(token) {
  return token.kind === IN_SEGMENT || token.kind === ANYTHING;
}

// Marks `state` and every state reachable from it by letting stars match nothing.
function addState(states, tokens, state) {
  let s = state;
  while (s <= tokens.length && states[s] === 0) {
    states[s] = 1;
    if (s === tokens.length || !isStar(tokens[s])) return;
    s++;
  }
}

function matchTokens(tokens, name) {
  const count = tokens.length;
  let current = new Uint8Array(count + 1);
  let next = new Uint8Array(count + 1);
  addState(current, tokens, 0);
  for (const ch of name) {
    next.fill(0);
    for (let s = 0; s < count; s++) {
      if (current[s] === 0) continue;
      const token = tokens[s];
      if (token.kind === LITERAL) {
        if (ch === token.char) addState(next, tokens, s + 1);
      } else if (token.kind === ONE_CHAR) {
        if (ch !== ':') addState(next, tokens, s + 1);
      } else if (token.kind === ANYTHING || ch !== ':') {
        // A star consumes the character and stays where it is.
        addState(next, tokens, s);
      }
    }
    if (!next.includes(1)) return false;
    [current, next] = [next, current];
  }
  return current[count] === 1;
}

/**
 * Compiles a tool-name pattern into a predicate.
 * @param {string} pattern
 * @returns {(name: string) => boolean}
 */
function compileToolPattern(pattern) {
  if (typeof pattern !== 'string' || pattern === '') {
    throw new TypeError('Tool pattern must be a non-empty string');
  }
  const tokens = tokenize(pattern);
  if (tokens.every((token) => token.kind === LITERAL)) {
    return (name) => name === pattern;
  }
  return (name) => typeof name === 'string' && matchTokens(tokens, name);
}

module.exports = { compileToolPattern };
