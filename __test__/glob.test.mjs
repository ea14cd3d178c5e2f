// lib/glob.js: minimatch-compatible matching for EventFilter's `glob` patterns. Expected
// values are minimatch 10's (the original's dependency) for the same inputs.
import { describe, it, expect } from 'vitest';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { minimatch, braceExpand } = require('../lib/glob.js');

const table = (rows, options) => {
  for (const [path, pattern, expected] of rows) {
    expect([path, pattern, minimatch(path, pattern, options)]).toEqual([path, pattern, expected]);
  }
};

describe('wildcards', () => {
  it('* matches within one path segment', () => {
    table([
      ['abc', 'a*', true],
      ['abc', '*c', true],
      ['abc', 'a*c', true],
      ['abc', 'b*', false],
      ['a/b', 'a*', false],
      ['a/b', 'a/*', true],
      ['a/b/c', 'a/*', false],
      ['', '*', false],
      ['abc', 'a***c', true],
      ['x.js', '*.js', true],
      ['x.ts', '*.js', false],
      ['a.b', '*.*', true],
      ['ab', '*.*', false],
    ]);
  });

  it('? matches exactly one character, never a slash', () => {
    table([
      ['ab', 'a?', true],
      ['a', 'a?', false],
      ['abc', 'a?', false],
      ['a/', 'a?', false],
      ['a.js', '?.js', true],
      ['abc', '???', true],
    ]);
  });

  it('** spans any number of whole segments', () => {
    table([
      ['a/b/c', 'a/**', true],
      ['a/b/c', 'a/**/c', true],
      ['a/c', 'a/**/c', true],
      ['a/x/y/z/c', 'a/**/c', true],
      ['a/x/y/z/d', 'a/**/c', false],
      ['a', 'a/**', false],
      ['a/', 'a/**', true],
      ['a/b', '**', true],
      ['/a', '**/a', true],
      ['x/a/y/b', '**/a/**/b', true],
      ['a/b', 'a**b', false],
      ['axxb', 'a**b', true],
    ]);
  });

  it('wildcards never match a leading dot, nor . and .. segments', () => {
    table([
      ['.hidden', '*', false],
      ['.hidden', '.*', true],
      ['.hidden', '?hidden', false],
      ['a/.b/c', 'a/**/c', false],
      ['a/.b/c', 'a/*/c', false],
      ['a/.b/c', 'a/.b/c', true],
      ['a/.b', 'a/**', false],
      ['x.y', '*.y', true],
      ['.y', '*.y', false],
    ]);
  });

  it('a trailing slash is matched by a pattern ending in * but not by one more segment', () => {
    table([
      ['a/b/', 'a/*', true],
      ['a/b/', 'a/b/*', false],
      ['a/b/', 'a/b/', true],
      ['a//b', 'a/b', true],
    ]);
  });

  it('resolves x/.. in the pattern', () => {
    table([
      ['x/a/b', 'x/*/../a/b', true],
      ['x/y/a/b', 'x/*/../a/b', false],
    ]);
  });
});

describe('bracket expressions', () => {
  it('ranges, negation, POSIX classes and literal brackets', () => {
    table([
      ['b', '[a-c]', true],
      ['d', '[a-c]', false],
      ['d', '[!a-c]', true],
      ['d', '[^a-c]', true],
      ['b', '[^a-c]', false],
      ['-', '[a-]', true],
      ['x', '[z-a]', false],
      ['5', '[[:digit:]]', true],
      ['x', '[[:digit:]]', false],
      ['é', '[[:alpha:]]', true],
      ['F', '[[:xdigit:]]', true],
      ['[', '[', true],
      [']', '[]]', true],
      ['a*b', 'a[*]b', true],
      ['axb', 'a[*]b', false],
      ['users:get', 'users[:]get', true],
    ]);
  });
});

describe('brace expansion', () => {
  it('expands sets, nested sets and sequences like bash', () => {
    expect(braceExpand('a{b,c}d')).toEqual(['abd', 'acd']);
    expect(braceExpand('a{b,c{d,e},{f,g}h}x{y,z}')).toEqual([
      'abxy',
      'abxz',
      'acdxy',
      'acdxz',
      'acexy',
      'acexz',
      'afhxy',
      'afhxz',
      'aghxy',
      'aghxz',
    ]);
    expect(braceExpand('a{1..3}')).toEqual(['a1', 'a2', 'a3']);
    expect(braceExpand('{3..1}')).toEqual(['3', '2', '1']);
    expect(braceExpand('{a..e..2}')).toEqual(['a', 'c', 'e']);
    expect(braceExpand('x{01..10..3}')).toEqual(['x01', 'x04', 'x07', 'x10']);
    expect(braceExpand('a{,b}')).toEqual(['a', 'ab']);
    expect(braceExpand('-v{,,,,}')).toEqual(['-v', '-v', '-v', '-v', '-v']);
    expect(braceExpand('{a,b}${c}')).toEqual(['a${c}', 'b${c}']);
  });

  it('leaves non-sets, escapes and a leading {} alone', () => {
    expect(braceExpand('a{b}c')).toEqual(['a{b}c']);
    expect(braceExpand('no braces')).toEqual(['no braces']);
    // Escaped braces and commas stay literal; brace-expansion drops their backslashes.
    expect(braceExpand('a\\{b,c}')).toEqual(['a{b,c}']);
    expect(braceExpand('{a\\,b}')).toEqual(['{a,b}']);
    expect(braceExpand('{},a}b')).toEqual(['{},a}b']);
    expect(braceExpand('{{a,b}')).toEqual(['{a', '{b']);
    expect(braceExpand('z{a,b},c}d')).toEqual(['za,c}d', 'zb,c}d']);
  });

  it('applies inside patterns', () => {
    table([
      ['users:get', '{users,orders}:get', true],
      ['orders:get', '{users,orders}:get', true],
      ['items:get', '{users,orders}:get', false],
      ['v2', 'v{1..3}', true],
      ['v4', 'v{1..3}', false],
      ['ab', '*(a|{b),c)}', true],
    ]);
  });

  it('caps the number of expansions (hostile patterns stay bounded)', () => {
    const many = braceExpand('{a,b}'.repeat(20));
    expect(many).toHaveLength(100000);
    expect(many[0]).toBe('a'.repeat(20));
  });
});

describe('extglobs', () => {
  it('@, ?, +, * and ! groups', () => {
    table([
      ['a', '@(a|b)', true],
      ['c', '@(a|b)', false],
      ['ab', '+(a|b)', true],
      ['abc', '+(a|b)', false],
      ['x', 'x?(y)', true],
      ['xy', 'x?(y)', true],
      ['xyy', 'x?(y)', false],
      ['xyyy', 'x*(y)', true],
      ['foo.bar', '*.!(js)', true],
      ['foo.js', '*.!(js)', false],
      ['foo.js.js', '*.!(js)', true],
      ['ac', '+(a)!(b)+(c)', true],
      ['abc', '+(a)!(b)+(c)', false],
      ['a(b', '@(a|a[(])b', true],
      ['+(a|b', '+(a|b', true],
    ]);
  });
});

describe('other minimatch rules', () => {
  it('nocase', () => {
    table(
      [
        ['ABC', 'a*', true],
        ['abc', 'A?C', true],
        ['X.JS', '*.js', true],
        ['Å', 'å', true],
        ['B', '[a-c]', true],
      ],
      { nocase: true },
    );
    table([
      ['ABC', 'a*', false],
      ['X.JS', '*.js', false],
    ]);
    // The option is part of the compiled-pattern cache key.
    expect(minimatch('ABC', 'abc')).toBe(false);
    expect(minimatch('ABC', 'abc', { nocase: true })).toBe(true);
    expect(minimatch('ABC', 'abc')).toBe(false);
  });

  it('leading ! negates, # comments match nothing, an empty pattern matches only ""', () => {
    table([
      ['abc', '!a*', false],
      ['xyz', '!a*', true],
      ['abc', '!!a*', true],
      ['!ab', '\\!a*', true],
      ['#a', '#a', false],
      ['#a', '\\#a', true],
      ['', '', true],
      ['a', '', false],
    ]);
  });

  it('backslash escapes wildcards', () => {
    table([
      ['a*b', 'a\\*b', true],
      ['axb', 'a\\*b', false],
      ['a?', 'a\\?', true],
      ['ab', 'a\\?', false],
      ['a{b,c}', 'a\\{b,c\\}', true],
    ]);
  });

  it('matches JSON-serialized payloads the way EventFilter uses it', () => {
    const payload = JSON.stringify({ callId: 'c_1', toolName: 'users:get', args: { id: 7 } });
    table([
      [payload, '*"toolName":"users:*"*', true],
      [payload, '*"toolName":"orders:*"*', false],
      [payload, '{*"id":7*,*"id":8*}', true],
      [JSON.stringify({ url: 'https://x/y' }), '*https*', false],
    ]);
  });

  it('rejects non-string and oversized patterns like minimatch', () => {
    expect(() => minimatch('x', 42)).toThrow(new TypeError('invalid pattern'));
    expect(() => minimatch('x', undefined)).toThrow(new TypeError('invalid pattern'));
    expect(() => minimatch('x', '*'.repeat(65537))).toThrow(new TypeError('pattern is too long'));
    expect(minimatch('x', 'x'.repeat(65536))).toBe(false);
  });

  it('stays fast with many ** segments that cannot match', () => {
    const pattern = '**/a/'.repeat(30) + 'z';
    const path = 'a/'.repeat(200) + 'y';
    expect(minimatch(path, pattern)).toBe(false);
    expect(minimatch('a/'.repeat(30) + 'z', pattern)).toBe(true);
  });
});
