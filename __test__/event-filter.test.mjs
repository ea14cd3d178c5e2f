// EventFilter semantics of the original (1.O in docs/compatibility.md): rule evaluation, content matching,
// the ReDoS guards and their messages, error routing, and the config helpers.
import { describe, it, expect, afterEach, vi } from 'vitest';
import { createRequire } from 'node:module';
import * as esmEntry from '../index.mjs';

// Node's own loader, so the entry and the module are the instances a user gets.
const require = createRequire(import.meta.url);
const entry = require('../index.js');
const lib = require('../lib/event-filter.js');

const { EventFilter, createEventFilter, createTypeFilter, createContentFilter, FilterMode, PatternType, DEFAULT_ALWAYS_ALLOW } =
  lib;

const S = 's_00000000-0000-4000-8000-000000000000';
const ev = (seq, type, payload) => ({ protocolVersion: 2, sessionId: S, seq, type, payload });

const init = ev(1, 'session_init', { cancelUrl: `/sessions/${S}/cancel`, expiresAt: '2030-01-01T00:00:00.000Z', encryption: { enabled: false } });
const call = ev(2, 'tool_call', { callId: 'c_1', toolName: 'users:get', args: { id: 7, tags: ['Admin', 'ops'], note: null } });
const progress = ev(3, 'tool_progress', { callId: 'c_1', phase: 'connecting', elapsedMs: 0 });
const applied = ev(4, 'tool_result_applied', { callId: 'c_1' });
const heartbeat = ev(5, 'heartbeat', { ts: '2030-01-01T00:00:01.000Z' });
const final = ev(6, 'final', { ok: true, result: 'Done', stats: { durationMs: 3, toolCallCount: 1, stdoutBytes: 0 } });
const ALL = [init, call, progress, applied, heartbeat, final];

const withArg = (s) => ev(7, 'tool_call', { callId: 'c_2', toolName: 'echo', args: { s } });
const sent = (config, events = ALL) => createEventFilter({ config }).filter(events).map((e) => e.type);
const content = (pattern, extra = {}) => ({ mode: 'include', alwaysAllow: [], rules: [{ content: { patterns: [pattern] } }], ...extra });
const matches = (pattern, event) => createEventFilter({ config: content(pattern) }).shouldSend(event);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('exports and helpers', () => {
  it('has the original constants, kept out of the package entry', () => {
    expect(FilterMode).toEqual({ Include: 'include', Exclude: 'exclude' });
    expect(PatternType).toEqual({ Exact: 'exact', Prefix: 'prefix', Regex: 'regex', Glob: 'glob' });
    expect([...DEFAULT_ALWAYS_ALLOW]).toEqual(['session_init', 'final']);
    for (const name of ['FilterMode', 'PatternType', 'DEFAULT_ALWAYS_ALLOW']) {
      expect(entry[name]).toBeUndefined();
      expect(esmEntry[name]).toBeUndefined();
    }
    for (const name of ['EventFilter', 'createEventFilter', 'createTypeFilter', 'createContentFilter']) {
      expect(typeof esmEntry[name]).toBe('function');
    }
    expect(entry.EventFilter).toBe(EventFilter);
    expect(entry.createEventFilter).toBe(createEventFilter);
    expect(entry.createTypeFilter).toBe(createTypeFilter);
    expect(entry.createContentFilter).toBe(createContentFilter);
  });

  it('createTypeFilter and createContentFilter return configs, not filters', () => {
    expect(createTypeFilter('include', ['tool_call'])).toEqual({ mode: 'include', rules: [{ types: { types: ['tool_call'] } }] });
    expect(createTypeFilter('whatever', ['final'])).toEqual({ mode: 'exclude', rules: [{ types: { types: ['final'] } }] });
    expect(createContentFilter('exclude', 'secret')).toEqual({
      mode: 'exclude',
      rules: [{ content: { patterns: [{ type: 'regex', pattern: 'secret' }] } }],
    });
    expect(createContentFilter('include', 'users:*', 'glob')).toEqual({
      mode: 'include',
      rules: [{ content: { patterns: [{ type: 'glob', pattern: 'users:*' }] } }],
    });
  });

  it('keeps the original instance fields', () => {
    const config = createContentFilter('include', 'x');
    const filter = new EventFilter({ config });
    expect(filter.config).toBe(config);
    expect(filter.alwaysAllow).toEqual(new Set(['session_init', 'final']));
    expect([...filter.compiledRegexes.keys()]).toEqual(['x:']);
    expect(createEventFilter({ config })).toBeInstanceOf(EventFilter);
  });
});

describe('shouldSend', () => {
  it('include sends matches plus the always-allowed types; exclude sends the rest', () => {
    expect(sent(createTypeFilter('include', ['tool_call']))).toEqual(['session_init', 'tool_call', 'final']);
    expect(sent(createTypeFilter('exclude', ['tool_progress', 'heartbeat']))).toEqual([
      'session_init',
      'tool_call',
      'tool_result_applied',
      'final',
    ]);
    // alwaysAllow wins over an exclude rule naming the type.
    expect(sent(createTypeFilter('exclude', ['final', 'session_init']))).toEqual(ALL.map((e) => e.type));
  });

  it('empty rules: include sends only alwaysAllow, exclude sends everything', () => {
    expect(sent({ mode: 'include', rules: [] })).toEqual(['session_init', 'final']);
    expect(sent({ mode: 'exclude', rules: [] })).toEqual(ALL.map((e) => e.type));
  });

  it('alwaysAllow can be replaced, even by nothing', () => {
    expect(sent({ mode: 'include', rules: [], alwaysAllow: ['heartbeat'] })).toEqual(['heartbeat']);
    expect(sent({ mode: 'exclude', rules: [{ types: { types: ['final'] } }], alwaysAllow: [] })).not.toContain('final');
  });

  it('a rule with neither types nor content matches everything', () => {
    expect(sent({ mode: 'include', rules: [{}], alwaysAllow: [] })).toEqual(ALL.map((e) => e.type));
    expect(sent({ mode: 'exclude', rules: [{}] })).toEqual(['session_init', 'final']);
  });

  it('types and content in one rule are ANDed; rules are ORed', () => {
    const toolCallForUsers = {
      types: { types: ['tool_call', 'tool_progress'] },
      content: { patterns: [{ type: 'prefix', pattern: 'users', field: 'payload.toolName' }] },
    };
    expect(sent({ mode: 'include', alwaysAllow: [], rules: [toolCallForUsers] })).toEqual(['tool_call']);
    expect(sent({ mode: 'include', alwaysAllow: [], rules: [toolCallForUsers, { types: { types: ['heartbeat'] } }] })).toEqual([
      'tool_call',
      'heartbeat',
    ]);
  });

  it('any mode other than include behaves as exclude', () => {
    expect(sent({ mode: 'INCLUDE', rules: [{ types: { types: ['heartbeat'] } }] })).toEqual([
      'session_init',
      'tool_call',
      'tool_progress',
      'tool_result_applied',
      'final',
    ]);
  });

  it('ignores regexTimeoutMs (never implemented by the original)', () => {
    const config = { ...createContentFilter('include', 'users'), regexTimeoutMs: 0 };
    expect(sent(config)).toEqual(sent(createContentFilter('include', 'users')));
  });
});

describe('content patterns', () => {
  it('reads `field` as a dot path from the event root; no field means the whole payload', () => {
    expect(matches({ type: 'exact', pattern: 'users:get', field: 'payload.toolName' }, call)).toBe(true);
    expect(matches({ type: 'exact', pattern: 'tool_call', field: 'type' }, call)).toBe(true);
    expect(matches({ type: 'exact', pattern: 'ops', field: 'payload.args.tags.1' }, call)).toBe(true);
    expect(matches({ type: 'exact', pattern: '7', field: 'payload.args.id' }, call)).toBe(true);
    expect(matches({ type: 'exact', pattern: JSON.stringify(call.payload) }, call)).toBe(true);
    expect(matches({ type: 'exact', pattern: JSON.stringify(call.payload), field: '' }, call)).toBe(true);
    expect(matches({ type: 'exact', pattern: '["Admin","ops"]', field: 'payload.args.tags' }, call)).toBe(true);
  });

  it('null becomes an empty string; missing or non-object hops never match', () => {
    expect(matches({ type: 'exact', pattern: '', field: 'payload.args.note' }, call)).toBe(true);
    expect(matches({ type: 'exact', pattern: '', field: 'payload.nothing' }, call)).toBe(false);
    expect(matches({ type: 'prefix', pattern: '', field: 'payload.toolName.length' }, call)).toBe(false);
    expect(matches({ type: 'prefix', pattern: '', field: 'payload.args.note.x' }, call)).toBe(false);
    // In exclude mode a field that does not resolve means "not matched", so the event is sent.
    const config = { mode: 'exclude', rules: [{ content: { patterns: [{ type: 'prefix', pattern: '', field: 'payload.x.y' }] } }] };
    expect(createEventFilter({ config }).shouldSend(call)).toBe(true);
  });

  it('exact, prefix, regex and glob', () => {
    const field = 'payload.toolName';
    expect(matches({ type: 'exact', pattern: 'users', field }, call)).toBe(false);
    expect(matches({ type: 'prefix', pattern: 'users:', field }, call)).toBe(true);
    expect(matches({ type: 'prefix', pattern: 'get', field }, call)).toBe(false);
    expect(matches({ type: 'regex', pattern: ':g.t$', field }, call)).toBe(true);
    expect(matches({ type: 'regex', pattern: '^get', field }, call)).toBe(false);
    expect(matches({ type: 'glob', pattern: 'users:*', field }, call)).toBe(true);
    expect(matches({ type: 'glob', pattern: 'users:?et', field }, call)).toBe(true);
    expect(matches({ type: 'glob', pattern: '{orders,users}:get', field }, call)).toBe(true);
    expect(matches({ type: 'glob', pattern: 'users', field }, call)).toBe(false);
    expect(matches({ type: 'glob', pattern: '*"phase":"connecting"*' }, progress)).toBe(true);
    // '*' stops at '/', as in minimatch: the cancelUrl in session_init has slashes.
    expect(matches({ type: 'glob', pattern: '*cancel*', field: 'payload.cancelUrl' }, init)).toBe(false);
    expect(matches({ type: 'glob', pattern: '/sessions/*/cancel', field: 'payload.cancelUrl' }, init)).toBe(true);
    expect(matches({ type: 'unknown', pattern: '', field }, call)).toBe(false);
  });

  it('caseInsensitive lowercases both sides (the regex then runs on the lowercased value)', () => {
    const field = 'payload.result';
    expect(matches({ type: 'exact', pattern: 'DONE', field }, final)).toBe(false);
    expect(matches({ type: 'exact', pattern: 'DONE', field, caseInsensitive: true }, final)).toBe(true);
    expect(matches({ type: 'prefix', pattern: 'dO', field, caseInsensitive: true }, final)).toBe(true);
    expect(matches({ type: 'glob', pattern: 'D*E', field, caseInsensitive: true }, final)).toBe(true);
    expect(matches({ type: 'glob', pattern: 'D*E', field }, final)).toBe(false);
    expect(matches({ type: 'regex', pattern: '^[A-Z]one$', field }, final)).toBe(true);
    expect(matches({ type: 'regex', pattern: '^[a-z]one$', field }, final)).toBe(false);
    expect(matches({ type: 'regex', pattern: '^done$', field, caseInsensitive: true }, final)).toBe(true);
    // 'İ' lowercases to two code units, which only a regex run on the lowercased value sees.
    const dotted = ev(9, 'final', { ok: true, result: 'İ' });
    expect(matches({ type: 'regex', pattern: '^.$', field }, dotted)).toBe(true);
    expect(matches({ type: 'regex', pattern: '^.$', field, caseInsensitive: true }, dotted)).toBe(false);
  });

  it("match: 'all' needs every pattern, the default 'any' needs one", () => {
    const patterns = [
      { type: 'prefix', pattern: 'users', field: 'payload.toolName' },
      { type: 'exact', pattern: '8', field: 'payload.args.id' },
    ];
    const filterWith = (match) =>
      createEventFilter({ config: { mode: 'include', alwaysAllow: [], rules: [{ content: { patterns, match } }] } });
    expect(filterWith(undefined).shouldSend(call)).toBe(true);
    expect(filterWith('any').shouldSend(call)).toBe(true);
    expect(filterWith('all').shouldSend(call)).toBe(false);
    expect(filterWith('all').shouldSend(ev(9, 'tool_call', { toolName: 'users:x', args: { id: 8 } }))).toBe(true);
  });

  it('compiles each regex once per pattern and case flag', () => {
    const config = {
      mode: 'include',
      rules: [
        { content: { patterns: [{ type: 'regex', pattern: 'a' }, { type: 'regex', pattern: 'a' }] } },
        { content: { patterns: [{ type: 'regex', pattern: 'a', caseInsensitive: true }, { type: 'glob', pattern: 'a' }] } },
        { types: { types: ['final'] } },
      ],
    };
    const filter = createEventFilter({ config });
    expect([...filter.compiledRegexes.keys()]).toEqual(['a:', 'a:i']);
    expect(filter.compiledRegexes.get('a:i').regex.test('A')).toBe(true);
    expect(filter.compiledRegexes.get('a:').regex.test('A')).toBe(false);
  });
});

const stdout = (chunk) => ({ protocolVersion: 2, sessionId: 's_1', seq: 2, type: 'stdout', payload: { chunk } });
const filterFor = (pattern) =>
  createEventFilter({
    config: { mode: 'include', rules: [{ content: { patterns: [{ type: 'regex', pattern, field: 'payload.chunk' }] } }] },
  });

describe('regex engine', () => {

  it('runs catastrophic patterns in linear time (this would backtrack for minutes in RegExp)', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const filter = filterFor('^(a+)+$');
    expect(filter.shouldSend(stdout(`${'a'.repeat(60)}b`))).toBe(false);
    expect(filter.shouldSend(stdout('a'.repeat(60)))).toBe(true);
    warn.mockRestore();
  });

  it('falls back to RegExp for lookaround and backreferences the linear engine lacks', () => {
    expect(filterFor('(?<=x)y').shouldSend(stdout('xy'))).toBe(true);
    expect(filterFor('(?<=x)y').shouldSend(stdout('zy'))).toBe(false);
    expect(filterFor('^(ab)\\1$').shouldSend(stdout('abab'))).toBe(true);
  });

  it('never matches a pattern that needs backtracking and looks catastrophic', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const filter = filterFor('^(a+)+\\1$');
    expect(filter.shouldSend(stdout(`${'a'.repeat(60)}b`))).toBe(false);
    expect(filter.shouldSend(stdout('aa'))).toBe(false);
    warn.mockRestore();
  });
});

describe('ReDoS protection', () => {
  const longValue = 'a'.repeat(20000) + '!';

  it('warns about suspicious patterns with the original message, once per pattern', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const suspicious = ['(a+)+$', '(a|ab)*', '(x*)*y', '(a{2})+'];
    const config = {
      mode: 'include',
      rules: [{ content: { patterns: [...suspicious, '(a+)+$', '^abc$', 'a+b*', '(ab)c+'].map((pattern) => ({ type: 'regex', pattern })) } }],
    };
    createEventFilter({ config });
    expect(warn.mock.calls).toEqual(
      suspicious.map((p) => [
        `[EventFilter] Potentially vulnerable regex pattern detected: ${p}. Input length will be limited to 10000 characters for protection.`,
      ]),
    );
  });

  it('only inspects the first 500 characters of a pattern', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    createEventFilter({ config: createContentFilter('include', 'x'.repeat(500) + '(a+)+') });
    expect(warn).not.toHaveBeenCalled();
    createEventFilter({ config: createContentFilter('include', 'x'.repeat(490) + '(a+)+') });
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('never runs a regex on more than 10000 characters: no match, so exclude sends', () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {});
    const plain = { type: 'regex', pattern: 'a', field: 'payload.args.s' };
    expect(matches(plain, withArg('a'.repeat(10000)))).toBe(true);
    expect(matches(plain, withArg('a'.repeat(10001)))).toBe(false);
    // Other pattern types have no such limit.
    expect(matches({ type: 'prefix', pattern: 'aaa', field: 'payload.args.s' }, withArg(longValue))).toBe(true);

    const pattern = { type: 'regex', pattern: '^(a+)+$', field: 'payload.args.s' };
    // Without the guard this input would backtrack for longer than any test run.
    expect(matches(pattern, withArg(longValue))).toBe(false);
    const exclude = createEventFilter({ config: { mode: 'exclude', rules: [{ content: { patterns: [pattern] } }] } });
    expect(exclude.shouldSend(withArg(longValue))).toBe(true);
    expect(exclude.shouldSend(withArg('aaaa'))).toBe(false);
  });

  it('reports an invalid regex once with console.error; it never matches and never throws', () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const onError = vi.fn();
    const filter = createEventFilter({ config: createContentFilter('include', 'a('), onError });
    expect(error).toHaveBeenCalledTimes(1);
    expect(error.mock.calls[0][0]).toBe('Invalid regex pattern: a(');
    expect(error.mock.calls[0][1]).toBeInstanceOf(SyntaxError);
    expect(filter.shouldSend(ev(8, 'heartbeat', { ts: 'a(' }))).toBe(false);
    expect(filter.compiledRegexes.size).toBe(0);
    expect(onError).not.toHaveBeenCalled();
    expect(error).toHaveBeenCalledTimes(1);
  });
});

describe('errors', () => {
  it('sends matching errors to onError(error, event) and counts them as no match', () => {
    const onError = vi.fn();
    const config = { mode: 'include', alwaysAllow: [], rules: [{ content: { patterns: [{ type: 'glob', pattern: 42 }] } }] };
    const filter = new EventFilter({ config, onError });
    expect(filter.shouldSend(call)).toBe(false);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0][0]).toBeInstanceOf(TypeError);
    expect(onError.mock.calls[0][0].message).toBe('invalid pattern');
    expect(onError.mock.calls[0][1]).toBe(call);
    // Without onError the failure is silent.
    expect(new EventFilter({ config }).shouldSend(call)).toBe(false);
  });

  it('lets errors outside the matching step escape, as the original', () => {
    const config = content({ type: 'exact', pattern: undefined, caseInsensitive: true });
    expect(() => createEventFilter({ config }).shouldSend(call)).toThrow(TypeError);
    const badRules = { mode: 'include', rules: 'x' };
    expect(() => createEventFilter({ config: badRules }).shouldSend(call)).toThrow('this.config.rules.some is not a function');
  });

  it('rejects configs without a rules array at construction', () => {
    expect(() => createEventFilter({ config: { mode: 'include' } })).toThrow(new TypeError('this.config.rules is not iterable'));
    expect(() => createEventFilter({ config: null })).toThrow(TypeError);
    expect(() => createEventFilter({ config: { typeFilter: { mode: 'include', types: ['final'] } } })).toThrow(
      'this.config.rules is not iterable',
    );
  });
});
