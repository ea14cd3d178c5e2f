// Seed-only orchestration classes (1.I in docs/compatibility.md): tool-name patterns, ToolRouter,
// AccessController and RateLimiter. Time is driven by an injected clock; nothing sleeps.
import { describe, it, expect, afterEach } from 'vitest';
import { createRequire } from 'node:module';

import { AccessController, RateLimiter, ToolRouter } from '../index.mjs';

// The pattern compiler is internal: the package exports the three classes that use it.
const require = createRequire(import.meta.url);
const { compileToolPattern } = require('../lib/tool-pattern.js');

function manualClock(start = 1_000_000) {
  return {
    time: start,
    now() {
      return this.time;
    },
    advance(ms) {
      this.time += ms;
    },
  };
}

const matchTable = (rows) => {
  for (const [pattern, name, expected] of rows) {
    expect([pattern, name, compileToolPattern(pattern)(name)]).toEqual([pattern, name, expected]);
  }
};

describe('compileToolPattern', () => {
  it('* stays inside one segment', () => {
    matchTable([
      ['admin:*', 'admin:delete', true],
      ['admin:*', 'admin:x:y', false],
      ['admin:*', 'admin:', true],
      ['admin:*', 'admin', false],
      ['user:*:read', 'user:profile:read', true],
      ['user:*:read', 'user:profile:write', false],
      ['user:*:read', 'user:a:b:read', false],
      ['db:*', 'db:query', true],
      ['api:external:*', 'api:external:weather', true],
      ['api:external:*', 'api:internal:weather', false],
      ['*', 'ping', true],
      ['*', 'a:b', false],
      ['get*', 'getUser', true],
      ['*User', 'getUser', true],
      ['a*b*c', 'aXXbYYc', true],
      ['a*b*c', 'aXX:bYYc', false],
    ]);
  });

  it('** crosses segments', () => {
    matchTable([
      ['users:**', 'users:a:b', true],
      ['users:**', 'users:a', true],
      ['users:**', 'users', false],
      ['users:**', 'other:a', false],
      ['**', 'a:b:c', true],
      ['**:read', 'user:profile:read', true],
      ['**:read', 'read', false],
      ['a***', 'a:b:c', true],
    ]);
  });

  it('? is one character other than ":"', () => {
    matchTable([
      ['a?c', 'abc', true],
      ['a?c', 'ac', false],
      ['a?c', 'abbc', false],
      ['a?c', 'a:c', false],
      ['a?c', 'a😀c', true],
    ]);
  });

  it('regex metacharacters are literal', () => {
    matchTable([
      ['a.b', 'a.b', true],
      ['a.b', 'axb', false],
      ['a+', 'aa', false],
      ['a+', 'a+', true],
      ['(x|y)', 'x', false],
      ['(x|y)', '(x|y)', true],
      ['[ab]', 'a', false],
      ['[ab]', '[ab]', true],
      ['^a$', '^a$', true],
      ['a\\d', 'a\\d', true],
      ['a\\d', 'a1', false],
      ['tool.*', 'tool.x', true],
      ['tool.*', 'toolsx', false],
    ]);
  });

  it('literal patterns match only themselves', () => {
    matchTable([
      ['db:query', 'db:query', true],
      ['db:query', 'db:query2', false],
      ['db:query', 'DB:QUERY', false],
    ]);
  });

  it('answers false for names that are not strings', () => {
    expect(compileToolPattern('*')(undefined)).toBe(false);
    expect(compileToolPattern('**')(42)).toBe(false);
  });

  it('rejects patterns that are not non-empty strings', () => {
    for (const bad of ['', undefined, null, 42, {}, ['a']]) {
      expect(() => compileToolPattern(bad)).toThrow(new TypeError('Tool pattern must be a non-empty string'));
    }
  });

  it('stays fast on patterns that make backtracking regexes blow up', () => {
    const matches = compileToolPattern('**a**a**a**a**a**b');
    const name = 'a'.repeat(20000);
    // A backtracking matcher needs ~n^5 steps here; this one needs n × pattern length.
    expect(matches(name)).toBe(false);
    expect(matches(`${name}b`)).toBe(true);
  });
});

describe('ToolRouter', () => {
  it('runs the README example: db:* receives db:query with its args', async () => {
    const router = new ToolRouter();
    const seen = [];
    router.register('db:*', {
      handler: async (name, args) => {
        seen.push([name, args]);
        return { operation: name.split(':')[1] };
      },
      rateLimit: { maxCalls: 100, windowMs: 60000 },
    });
    const result = await router.execute('db:query', { sql: 'SELECT * FROM users' });
    expect(result).toEqual({ operation: 'query' });
    expect(seen).toEqual([['db:query', { sql: 'SELECT * FROM users' }]]);
  });

  it('passes the context to the handler and accepts sync handlers', async () => {
    const router = new ToolRouter().register('echo', { handler: (name, args, context) => ({ name, args, user: context.user }) });
    await expect(router.execute('echo', 1, { user: 'u1' })).resolves.toEqual({ name: 'echo', args: 1, user: 'u1' });
  });

  it('uses the first registered route that matches', async () => {
    const router = new ToolRouter()
      .register('db:admin:*', { handler: () => 'admin' })
      .register('db:**', { handler: () => 'any-db' })
      .register('db:admin:drop', { handler: () => 'never reached' });
    expect(await router.execute('db:admin:drop')).toBe('admin');
    expect(await router.execute('db:x:y')).toBe('any-db');
    expect(router.routes()).toEqual(['db:admin:*', 'db:**', 'db:admin:drop']);
  });

  it('rejects an unrouted tool with UNKNOWN_TOOL', async () => {
    const router = new ToolRouter().register('db:*', { handler: () => 1 });
    await expect(router.execute('fs:read', {})).rejects.toMatchObject({
      code: 'UNKNOWN_TOOL',
      message: 'Unknown tool: fs:read',
    });
    await expect(router.execute('db:a:b', {})).rejects.toMatchObject({ code: 'UNKNOWN_TOOL' });
  });

  it('has, routes and unregister', async () => {
    const router = new ToolRouter().register('a:*', { handler: () => 'a' }).register('b', { handler: () => 'b' });
    expect(router.has('a:x')).toBe(true);
    expect(router.has('b')).toBe(true);
    expect(router.has('c')).toBe(false);
    expect(router.unregister('a:*')).toBe(true);
    expect(router.unregister('a:*')).toBe(false);
    expect(router.has('a:x')).toBe(false);
    expect(router.routes()).toEqual(['b']);
    await expect(router.execute('a:x')).rejects.toMatchObject({ code: 'UNKNOWN_TOOL' });
  });

  it('refuses a duplicate pattern until it is unregistered', () => {
    const router = new ToolRouter().register('x', { handler: () => 1 });
    expect(() => router.register('x', { handler: () => 2 })).toThrow('Tool route "x" is already registered');
    router.unregister('x');
    expect(() => router.register('x', { handler: () => 2 })).not.toThrow();
  });

  it('throws TypeError on bad definitions', () => {
    const router = new ToolRouter();
    expect(() => router.register('', { handler: () => 1 })).toThrow(new TypeError('Tool pattern must be a non-empty string'));
    expect(() => router.register('x')).toThrow(TypeError);
    expect(() => router.register('x', { handler: 'nope' })).toThrow(/handler must be a function/);
    expect(() => router.register('x', { handler: () => 1, requiresAuth: 'yes' })).toThrow(/requiresAuth must be a boolean/);
    expect(() => router.register('x', { handler: () => 1, rateLimit: { maxCalls: 0, windowMs: 10 } })).toThrow(/maxCalls must be a positive integer/);
    expect(() => router.register('x', { handler: () => 1, rateLimit: { maxCalls: 1, windowMs: -1 } })).toThrow(/windowMs must be a positive finite number/);
    expect(() => router.register('x', { handler: () => 1, rateLimit: 5 })).toThrow(TypeError);
    // Nothing half-registered.
    expect(router.routes()).toEqual([]);
  });

  it('rejects calls with a non-string name', async () => {
    const router = new ToolRouter().register('**', { handler: () => 1 });
    await expect(router.execute(undefined)).rejects.toThrow(new TypeError('Tool name must be a string'));
  });

  it('passes on what a handler throws', async () => {
    const router = new ToolRouter().register('boom', {
      handler: () => {
        throw Object.assign(new Error('kaput'), { code: 'E_BOOM' });
      },
    });
    await expect(router.execute('boom')).rejects.toMatchObject({ message: 'kaput', code: 'E_BOOM' });
  });

  it('applies a per-route sliding window and does not count refused calls', async () => {
    const clock = manualClock();
    let runs = 0;
    const router = new ToolRouter({ clock })
      .register('db:*', { handler: () => ++runs, rateLimit: { maxCalls: 2, windowMs: 1000 } })
      .register('free', { handler: () => 'free' });
    await router.execute('db:a');
    clock.advance(500);
    await router.execute('db:b'); // the window is shared by every name the route handles
    await expect(router.execute('db:a')).rejects.toMatchObject({ code: 'RATE_LIMITED', message: 'Rate limit exceeded for db:a' });
    expect(await router.execute('free')).toBe('free');
    expect(runs).toBe(2);
    clock.advance(500); // the first call leaves the window; the second is still in it
    await router.execute('db:c');
    await expect(router.execute('db:c')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    clock.advance(499);
    await expect(router.execute('db:c')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    clock.advance(1);
    await router.execute('db:c');
    expect(runs).toBe(4);
  });

  it('requiresAuth needs a truthy context.authenticated', async () => {
    const router = new ToolRouter().register('api:external:*', { handler: (name) => `called ${name}`, requiresAuth: true });
    for (const context of [undefined, {}, { authenticated: false }, { user: 'alice' }, { userId: 'u1' }]) {
      await expect(router.execute('api:external:weather', {}, context)).rejects.toMatchObject({
        code: 'UNAUTHORIZED',
        message: 'Authentication required for tool: api:external:weather',
      });
    }
    await expect(router.execute('api:external:weather', {}, { authenticated: true })).resolves.toBe('called api:external:weather');
  });

  it('checks authentication before spending rate-limit budget', async () => {
    const router = new ToolRouter().register('x', { handler: () => 'ok', requiresAuth: true, rateLimit: { maxCalls: 1, windowMs: 60000 } });
    await expect(router.execute('x', {}, {})).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(router.execute('x', {}, { authenticated: true })).resolves.toBe('ok');
    await expect(router.execute('x', {}, { authenticated: true })).rejects.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('toolHandler() adapts the router to the broker calling convention', async () => {
    const router = new ToolRouter()
      .register('open', { handler: (name, args, context) => ({ name, args, sessionId: context.sessionId }) })
      .register('secure', { handler: () => 'secret', requiresAuth: true });
    const plain = router.toolHandler();
    await expect(plain({ q: 1 }, { sessionId: 's1', callId: 'c1', secrets: {}, toolName: 'open' })).resolves.toEqual({
      name: 'open',
      args: { q: 1 },
      sessionId: 's1',
    });
    await expect(plain({}, { toolName: 'secure' })).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(router.toolHandler({ authenticated: true })({}, { toolName: 'secure' })).resolves.toBe('secret');
    expect(() => router.toolHandler('nope')).toThrow(TypeError);
  });
});

// The rules of the README's AccessController example.
function readmeRules() {
  return [
    { pattern: 'public:*', allow: true },
    { pattern: 'admin:*', allow: false, unless: { role: 'admin' } },
    { pattern: 'user:*:read', allow: true },
    { pattern: 'user:*:write', allow: false, unless: { owner: true } },
  ];
}

describe('AccessController', () => {
  it('answers the README examples', () => {
    const access = new AccessController({ defaultPolicy: 'deny', rules: readmeRules() });
    expect(access.check('admin:delete', { role: 'user' })).toBe(false);
    expect(access.check('admin:delete', { role: 'admin' })).toBe(true);
    expect(access.check('user:profile:read', {})).toBe(true);
    expect(access.check('user:profile:write', {})).toBe(false);
    expect(access.check('user:profile:write', { owner: true })).toBe(true);
    expect(access.check('public:x', {})).toBe(true);
    expect(access.check('other', {})).toBe(false);
  });

  it('defaults to deny, with or without a context', () => {
    expect(new AccessController().check('anything')).toBe(false);
    expect(new AccessController({ rules: readmeRules() }).check('other')).toBe(false);
    expect(new AccessController({ defaultPolicy: 'allow', rules: readmeRules() }).check('other', null)).toBe(true);
  });

  it('lets the first matching rule decide', () => {
    const access = new AccessController({
      rules: [
        { pattern: 'files:secret', allow: false },
        { pattern: 'files:*', allow: true },
      ],
    });
    expect(access.check('files:secret')).toBe(false);
    expect(access.check('files:readme')).toBe(true);
    const reversed = new AccessController({
      rules: [
        { pattern: 'files:*', allow: true },
        { pattern: 'files:secret', allow: false },
      ],
    });
    expect(reversed.check('files:secret')).toBe(true);
  });

  it('unless needs every key, compared with ===, as own properties', () => {
    const access = new AccessController({
      defaultPolicy: 'allow',
      rules: [{ pattern: 'ops:*', allow: false, unless: { role: 'admin', mfa: true } }],
    });
    expect(access.check('ops:restart', { role: 'admin', mfa: true })).toBe(true);
    expect(access.check('ops:restart', { role: 'admin' })).toBe(false);
    expect(access.check('ops:restart', { role: 'admin', mfa: 'true' })).toBe(false);
    expect(access.check('ops:restart', Object.create({ role: 'admin', mfa: true }))).toBe(false);
    const inherited = new AccessController({ rules: [{ pattern: 'x', allow: false, unless: { constructor: Object } }] });
    expect(inherited.check('x', {})).toBe(false);
    // unless can also deny what a rule allows.
    const flipToDeny = new AccessController({ rules: [{ pattern: 'x', allow: true, unless: { banned: true } }] });
    expect(flipToDeny.check('x', { banned: true })).toBe(false);
    expect(flipToDeny.check('x', { banned: false })).toBe(true);
  });

  it('addRule appends (chainable) and copies the rule', () => {
    const rule = { pattern: 'late:*', allow: true };
    const access = new AccessController({ rules: [{ pattern: 'late:blocked', allow: false }] });
    expect(access.addRule(rule)).toBe(access);
    rule.allow = false;
    expect(access.check('late:ok')).toBe(true);
    expect(access.check('late:blocked')).toBe(false);
  });

  it('assert throws ACCESS_DENIED', () => {
    const access = new AccessController({ rules: readmeRules() });
    expect(() => access.assert('public:x', {})).not.toThrow();
    let caught;
    try {
      access.assert('admin:delete', { role: 'user' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(Error);
    expect(caught.code).toBe('ACCESS_DENIED');
    expect(caught.message).toBe('Access denied to tool: admin:delete');
  });

  it('validates options and arguments with TypeErrors', () => {
    expect(() => new AccessController(null)).toThrow(new TypeError('AccessController options must be an object'));
    expect(() => new AccessController({ defaultPolicy: 'maybe' })).toThrow(/defaultPolicy must be 'deny' or 'allow', got "maybe"/);
    expect(() => new AccessController({ defaultPolicy: 10n })).toThrow(/got bigint/);
    expect(() => new AccessController({ rules: {} })).toThrow(new TypeError('rules must be an array'));
    expect(() => new AccessController({ rules: [null] })).toThrow(TypeError);
    expect(() => new AccessController({ rules: [{ allow: true }] })).toThrow(new TypeError('Tool pattern must be a non-empty string'));
    expect(() => new AccessController({ rules: [{ pattern: 'x', allow: 'yes' }] })).toThrow(/allow must be a boolean/);
    expect(() => new AccessController({ rules: [{ pattern: 'x', allow: true, unless: 'admin' }] })).toThrow(/unless must be an object/);
    expect(() => new AccessController({ rules: [{ pattern: 'x', allow: true, unless: {} }] })).toThrow(/at least one context key/);
    const access = new AccessController();
    expect(() => access.check(5)).toThrow(new TypeError('Tool name must be a string'));
    expect(() => access.check('x', 'admin')).toThrow(new TypeError('Access context must be an object'));
  });
});

describe('RateLimiter', () => {
  it('enforces the README limits: global, per session, per tool pattern', () => {
    const limiter = new RateLimiter(
      {
        global: { maxCalls: 5, windowMs: 60000 },
        perSession: { maxCalls: 3, windowMs: 60000 },
        perTool: { 'expensive:*': { maxCalls: 1, windowMs: 60000 } },
      },
      manualClock(),
    );
    expect(limiter.allow('s1', 'expensive:render')).toBe(true);
    expect(limiter.allow('s2', 'expensive:other')).toBe(false); // the pattern's budget is shared
    expect(limiter.allow('s1', 'cheap')).toBe(true);
    expect(limiter.allow('s1', 'cheap')).toBe(true);
    expect(limiter.allow('s1', 'cheap')).toBe(false); // s1 has used its 3
    expect(limiter.allow('s2', 'cheap')).toBe(true);
    expect(limiter.allow('s3', 'cheap')).toBe(true); // global is now at 5
    expect(limiter.allow('s4', 'cheap')).toBe(false);
  });

  it('slides: a call leaves the window exactly windowMs after it was made', () => {
    const clock = manualClock(0);
    const limiter = new RateLimiter({ perSession: { maxCalls: 2, windowMs: 1000 } }, clock);
    expect(limiter.allow('s', 't')).toBe(true); // t=0
    clock.advance(500);
    expect(limiter.allow('s', 't')).toBe(true); // t=500
    clock.advance(499);
    expect(limiter.allow('s', 't')).toBe(false); // t=999: both still count
    clock.advance(1);
    // t=1000: the call at 0 has left. A fixed window would now allow two; a sliding one allows one.
    expect(limiter.allow('s', 't')).toBe(true);
    expect(limiter.allow('s', 't')).toBe(false);
    clock.advance(500);
    expect(limiter.allow('s', 't')).toBe(true); // t=1500: the call at 500 has left
  });

  it('records a call only when every limit has room', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ global: { maxCalls: 3, windowMs: 1000 }, perSession: { maxCalls: 1, windowMs: 1000 } }, clock);
    expect(limiter.allow('a', 't')).toBe(true);
    for (let i = 0; i < 10; i++) expect(limiter.allow('a', 't')).toBe(false);
    // The refused calls did not use the global budget.
    expect(limiter.remaining('b', 't')).toBe(1);
    expect(limiter.allow('b', 't')).toBe(true);
    expect(limiter.allow('c', 't')).toBe(true);
    expect(limiter.remaining('d', 't')).toBe(0);
    expect(limiter.allow('d', 't')).toBe(false);
  });

  it('applies every matching perTool pattern', () => {
    const limiter = new RateLimiter({ perTool: { 'db:**': { maxCalls: 3, windowMs: 1000 }, 'db:write:*': { maxCalls: 1, windowMs: 1000 } } }, manualClock());
    expect(limiter.allow('s', 'db:write:users')).toBe(true);
    expect(limiter.allow('s', 'db:write:orders')).toBe(false);
    expect(limiter.allow('s', 'db:read:users')).toBe(true);
    expect(limiter.allow('s', 'db:read:users')).toBe(true);
    expect(limiter.allow('s', 'db:read:users')).toBe(false);
  });

  it('remaining gives the tightest limit, Infinity when none applies, and records nothing', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSession: { maxCalls: 4, windowMs: 1000 }, perTool: { 'x:*': { maxCalls: 2, windowMs: 1000 } } }, clock);
    expect(new RateLimiter({}, clock).remaining('s', 't')).toBe(Infinity);
    expect(limiter.remaining('s', 'x:a')).toBe(2);
    expect(limiter.remaining('s', 'x:a')).toBe(2);
    limiter.allow('s', 'x:a');
    expect(limiter.remaining('s', 'x:a')).toBe(1);
    expect(limiter.remaining('s', 'y')).toBe(3);
    clock.advance(1000);
    expect(limiter.remaining('s', 'x:a')).toBe(2);
  });

  it('reset(sessionId) clears one session; reset() clears everything', () => {
    const limiter = new RateLimiter({ global: { maxCalls: 10, windowMs: 1000 }, perSession: { maxCalls: 1, windowMs: 1000 } }, manualClock());
    limiter.allow('a', 't');
    limiter.allow('b', 't');
    limiter.reset('a');
    expect(limiter.allow('a', 't')).toBe(true);
    expect(limiter.allow('b', 't')).toBe(false);
    expect(limiter.remaining('c', 't')).toBe(1); // global still counts 3 calls; per-session is tighter
    limiter.reset();
    expect(limiter.allow('b', 't')).toBe(true);
    expect(limiter.stats()).toEqual({ sessionBuckets: 1, toolBuckets: 0, globalBuckets: 1 });
  });

  it('keeps memory bounded: expired budgets are deleted, abandoned sessions swept', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSession: { maxCalls: 1, windowMs: 1000 }, perTool: { 'a:*': { maxCalls: 1000, windowMs: 500 } } }, clock);
    for (let i = 0; i < 1000; i++) expect(limiter.allow(`session-${i}`, 'a:x')).toBe(true);
    expect(limiter.stats()).toEqual({ sessionBuckets: 1000, toolBuckets: 1, globalBuckets: 0 });
    clock.advance(1000);
    // One call by a new session triggers the sweep of every budget whose calls expired.
    expect(limiter.allow('fresh', 'a:y')).toBe(true);
    expect(limiter.stats()).toEqual({ sessionBuckets: 1, toolBuckets: 1, globalBuckets: 0 });
    // A budget looked at after it emptied is dropped at once, before the next sweep is due
    // ('a:*' has a 500 ms window; sweeps run once per 1000 ms, the longest window).
    clock.advance(500);
    expect(limiter.remaining('other', 'a:z')).toBe(1);
    expect(limiter.stats()).toEqual({ sessionBuckets: 1, toolBuckets: 0, globalBuckets: 0 });
  });

  it('never un-counts a call when the clock goes backwards', () => {
    const clock = manualClock(10_000);
    const limiter = new RateLimiter({ perSession: { maxCalls: 1, windowMs: 1000 } }, clock);
    expect(limiter.allow('s', 't')).toBe(true);
    clock.advance(-5000);
    expect(limiter.allow('s', 't')).toBe(false);
    clock.advance(5999);
    expect(limiter.allow('s', 't')).toBe(false);
    clock.advance(1);
    expect(limiter.allow('s', 't')).toBe(true);
  });

  it('validates options, clock and arguments with TypeErrors', () => {
    expect(() => new RateLimiter(null)).toThrow(new TypeError('RateLimiter options must be an object'));
    expect(() => new RateLimiter({ global: { maxCalls: 1.5, windowMs: 1 } })).toThrow(new TypeError('global.maxCalls must be a positive integer'));
    expect(() => new RateLimiter({ perSession: { maxCalls: 1, windowMs: Infinity } })).toThrow(new TypeError('perSession.windowMs must be a positive finite number'));
    expect(() => new RateLimiter({ perSession: [] })).toThrow(/perSession must be an object/);
    expect(() => new RateLimiter({ perTool: { '': { maxCalls: 1, windowMs: 1 } } })).toThrow(new TypeError('Tool pattern must be a non-empty string'));
    expect(() => new RateLimiter({ perTool: { 'x:*': { maxCalls: 0, windowMs: 1 } } })).toThrow('perTool["x:*"].maxCalls must be a positive integer');
    expect(() => new RateLimiter({ perTool: 'x:*' })).toThrow(/perTool must be an object/);
    expect(() => new RateLimiter({}, { now: 5 })).toThrow(new TypeError('clock must be an object with a now() method'));
    expect(() => new RateLimiter({}, { now: () => Number.NaN })).toThrow(new TypeError('clock.now() must return a finite number'));
    const limiter = new RateLimiter({});
    expect(() => limiter.allow(undefined, 't')).toThrow(new TypeError('sessionId must be a string'));
    expect(() => limiter.allow('s', null)).toThrow(new TypeError('toolName must be a string'));
    expect(() => limiter.reset(7)).toThrow(new TypeError('sessionId must be a string'));
  });

  it('uses Date.now by default', () => {
    const limiter = new RateLimiter({ perSession: { maxCalls: 1, windowMs: 3_600_000 } });
    expect(limiter.allow('s', 't')).toBe(true);
    expect(limiter.allow('s', 't')).toBe(false);
  });
});

describe('ToolRouter as the Broker toolHandler (end to end)', () => {
  let broker;
  afterEach(async () => {
    await broker?.dispose();
    broker = undefined;
  });

  it('routes callTool through the router; an unrouted name fails the run with UNKNOWN_TOOL', async () => {
    const { createBroker } = await import('../index.mjs');
    const router = new ToolRouter().register('db:*', {
      handler: async (name, args, context) => ({ operation: name.split(':')[1], sql: args.sql, hasSession: typeof context.sessionId === 'string' }),
    });
    broker = createBroker({ toolHandler: router.toolHandler() });

    const ok = await broker.execute("return await callTool('db:query', {sql: 'x'})");
    expect(ok.success).toBe(true);
    expect(ok.value).toEqual({ operation: 'query', sql: 'x', hasSession: true });

    const failed = await broker.execute("return await callTool('fs:read', {path: '/etc/passwd'})");
    expect(failed.success).toBe(false);
    expect(failed.error).toMatchObject({ code: 'UNKNOWN_TOOL', message: 'Unknown tool: fs:read' });

    // Scripts can catch the rejection and see the code.
    const caught = await broker.execute("try { await callTool('nope', {}) } catch (e) { return e.code }");
    expect(caught).toMatchObject({ success: true, value: 'UNKNOWN_TOOL' });
  });
});
