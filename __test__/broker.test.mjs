// Broker / createBroker: every method, getter, default and lifecycle error (1.B in docs/compatibility.md,
// 1.C, 1.D in docs/compatibility.md), and what scripts see through broker.execute.
import { describe, it, expect, afterEach } from 'vitest';
import * as pkg from '../index.mjs';
import { Broker, BrokerSession, createBroker } from '../index.mjs';
import { INFO_KEYS, NO_LEAKS, SESSION_ID_RE, collector, hangingTool, hostCounts, settleWithin, sleep, waitFor } from './helpers/index.mjs';

const handler = () => 1;

const MAX_SESSIONS = (n) =>
  `Maximum sessions reached (${n}). Wait for existing sessions to complete or increase maxSessions.`;

const brokers = [];
function makeBroker(config) {
  const broker = createBroker(config);
  brokers.push(broker);
  return broker;
}

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.dispose()));
});

describe('package exports', () => {
  it('exports the original names, the same objects from ESM and CJS', async () => {
    for (const name of [
      'Broker',
      'createBroker',
      'ToolRegistry',
      'createToolRegistry',
      'BrokerSession',
      'createBrokerSession',
      'SessionManager',
      'createSessionManager',
    ]) {
      expect(typeof pkg[name]).toBe('function');
    }
    const { createRequire } = await import('node:module');
    const cjs = createRequire(import.meta.url)('../index.js');
    expect(cjs.Broker).toBe(Broker);
    expect(cjs.createBroker).toBe(createBroker);
  });
});

describe('construction', () => {
  it('createBroker(config) is new Broker(config); the config is optional', async () => {
    const a = makeBroker();
    const b = new Broker();
    brokers.push(b);
    expect(a).toBeInstanceOf(Broker);
    expect(b.isDisposed).toBe(false);
    expect(a.stats()).toEqual({ tools: 0, activeSessions: 0, totalSessions: 0 });
  });

  it('rejects a non-object config with a TypeError', () => {
    expect(() => createBroker(null)).toThrow(new TypeError('Broker config must be an object'));
    expect(() => createBroker(5)).toThrow(TypeError);
  });

  it('defaults maxSessions to 100', () => {
    const broker = makeBroker();
    for (let i = 0; i < 100; i++) broker.createSession();
    expect(() => broker.createSession()).toThrow(new Error(MAX_SESSIONS(100)));
    expect(broker.stats()).toEqual({ tools: 0, activeSessions: 100, totalSessions: 100 });
  });
});

describe('tools and secrets', () => {
  it('tool() is chainable and keeps insertion order; duplicates throw', () => {
    const broker = makeBroker();
    expect(broker.tool('b', { handler }).tool('a', { handler })).toBe(broker);
    expect(broker.tools({ c: { handler }, d: { handler } })).toBe(broker);
    expect(broker.listTools()).toEqual(['b', 'a', 'c', 'd']);
    expect(() => broker.tool('a', { handler })).toThrow(new Error('Tool "a" is already registered'));
    expect(() => broker.tools({ e: { handler }, a: { handler } })).toThrow('Tool "a" is already registered');
    expect(broker.listTools()).toEqual(['b', 'a', 'c', 'd', 'e']);
    expect(broker.stats().tools).toBe(5);
  });

  it('hasTool / removeTool', () => {
    const broker = makeBroker().tool('x', { handler: () => 1 });
    expect(broker.hasTool('x')).toBe(true);
    expect(broker.hasTool('y')).toBe(false);
    expect(broker.removeTool('x')).toBe(true);
    expect(broker.removeTool('x')).toBe(false);
    expect(broker.hasTool('x')).toBe(false);
    expect(broker.listTools()).toEqual([]);
  });

  it('secret / secrets are chainable; hasSecret / removeSecret', () => {
    const broker = makeBroker();
    expect(broker.secret('A', '1')).toBe(broker);
    expect(broker.secrets({ B: '2', C: '3' })).toBe(broker);
    expect(broker.hasSecret('A')).toBe(true);
    expect(broker.hasSecret('C')).toBe(true);
    expect(broker.hasSecret('Z')).toBe(false);
    expect(broker.removeSecret('B')).toBe(true);
    expect(broker.removeSecret('B')).toBe(false);
    expect(broker.hasSecret('B')).toBe(false);
  });

  it('getOpenApiSources() is empty by default', () => {
    expect(makeBroker().getOpenApiSources()).toEqual([]);
  });
});

describe('sessions', () => {
  it('createSession is sync, idle in state starting, and emits nothing until execute', () => {
    const broker = makeBroker();
    const session = broker.createSession();
    expect(session).toBeInstanceOf(BrokerSession);
    expect(session.sessionId).toMatch(SESSION_ID_RE);
    expect(session.state).toBe('starting');
    expect(session.seq).toBe(0);
    expect(session.getEvents()).toEqual([]);
    expect(broker.getSession(session.sessionId)).toBe(session);
    expect(broker.getSession('s_unknown')).toBeUndefined();
  });

  it('accepts any caller-supplied sessionId', () => {
    const broker = makeBroker();
    const session = broker.createSession({ sessionId: 'whatever-123' });
    expect(session.sessionId).toBe('whatever-123');
    expect(broker.getSession('whatever-123')).toBe(session);
  });

  it('enforces maxSessions for createSession and execute, with the exact message', async () => {
    const broker = makeBroker({ sessions: { maxSessions: 2 } });
    broker.createSession();
    broker.createSession();
    expect(() => broker.createSession()).toThrow(new Error(MAX_SESSIONS(2)));
    await expect(broker.execute('return 1')).rejects.toThrow(new Error(MAX_SESSIONS(2)));
    expect(broker.stats()).toEqual({ tools: 0, activeSessions: 2, totalSessions: 2 });
  });

  it('listSessions / listActiveSessions give SessionInfo in insertion order', async () => {
    const broker = makeBroker();
    const a = broker.createSession();
    const b = broker.createSession({ limits: { sessionTtlMs: 1000 } });
    await b.execute('return 1');
    const list = broker.listSessions();
    expect(list.map((i) => Object.keys(i))).toEqual([INFO_KEYS, INFO_KEYS]);
    expect(list).toEqual([
      { sessionId: a.sessionId, state: 'starting', createdAt: a.createdAt, expiresAt: a.createdAt + 60000, isExpired: false },
      { sessionId: b.sessionId, state: 'completed', createdAt: b.createdAt, expiresAt: b.createdAt + 1000, isExpired: false },
    ]);
    expect(broker.listActiveSessions()).toEqual([list[0]]);
    expect(broker.stats()).toEqual({ tools: 0, activeSessions: 1, totalSessions: 2 });
  });

  it('terminateSession cancels, disposes and removes; false for unknown ids', async () => {
    const broker = makeBroker();
    const hang = hangingTool();
    broker.tool('hang', hang.def);
    const idle = broker.createSession();
    const events = collector();
    idle.onEvent(events.onEvent);
    expect(await broker.terminateSession(idle.sessionId)).toBe(true);
    expect(events.events.map((e) => [e.type, e.payload.message ?? e.payload.error.message])).toEqual([
      ['error', 'Terminated by session manager'],
      ['final', 'Terminated by session manager'],
    ]);
    expect(broker.getSession(idle.sessionId)).toBeUndefined();
    expect(await broker.terminateSession(idle.sessionId)).toBe(false);
    expect(await broker.terminateSession('nope')).toBe(false);

    // As after cancel(): wait() gives the cancelled result, execute() refuses.
    expect(await idle.wait()).toMatchObject({
      success: false,
      error: { message: 'Terminated by session manager', name: 'Error', code: 'SESSION_CANCELLED' },
      finalState: 'cancelled',
    });
    await expect(idle.execute('return 1')).rejects.toThrow('Session is already executing');

    const custom = broker.createSession();
    await broker.terminateSession(custom.sessionId, 'bye');
    expect(custom.getEvents()[0].payload.message).toBe('bye');

    const running = broker.createSession();
    const pending = running.execute("return await callTool('hang', {})");
    await waitFor(() => hang.calls.length === 1);
    const terminated = broker.terminateSession(running.sessionId);
    expect(terminated).toBeInstanceOf(Promise);
    expect(await terminated).toBe(true);
    const result = await pending;
    expect(result).toMatchObject({
      success: false,
      error: { message: 'Session was cancelled', name: 'Error', code: 'SESSION_CANCELLED' },
      finalState: 'cancelled',
    });
    expect(running.state).toBe('cancelled');
    expect(hang.calls[0].aborted).toBe(true);
    expect(broker.getSession(running.sessionId)).toBeUndefined();
    expect(broker.stats().totalSessions).toBe(0);
  });

  it('cleanup() removes terminal and expired sessions silently and returns the count', async () => {
    const broker = makeBroker();
    const idle = broker.createSession();
    const done = broker.createSession();
    await done.execute('return 1');
    const cancelled = broker.createSession();
    await cancelled.cancel();
    const expired = broker.createSession({ limits: { sessionTtlMs: 1 } });
    await sleep(5);
    expect(expired.isExpired()).toBe(true);
    const seqBefore = expired.seq;
    expect(broker.cleanup()).toBe(3);
    expect(expired.seq).toBe(seqBefore);
    expect(broker.listSessions().map((s) => s.sessionId)).toEqual([idle.sessionId]);
    expect(broker.cleanup()).toBe(0);
  });

  it('a duplicate sessionId silently replaces the earlier session (Q7)', () => {
    const broker = makeBroker();
    const first = broker.createSession({ sessionId: 'dup' });
    const second = broker.createSession({ sessionId: 'dup' });
    expect(broker.getSession('dup')).toBe(second);
    expect(broker.stats().totalSessions).toBe(1);
    expect(first.state).toBe('starting');
  });
});

describe('execute', () => {
  it('creates a session, runs it, then disposes and removes it', async () => {
    const broker = makeBroker();
    const { events, onEvent } = collector();
    const result = await broker.execute('return 1 + 2', { onEvent });
    expect(result.value).toBe(3);
    expect(broker.getSession(events[0].sessionId)).toBeUndefined();
    expect(broker.stats()).toEqual({ tools: 0, activeSessions: 0, totalSessions: 0 });
    expect(hostCounts()).toEqual(NO_LEAKS);
  });

  it('rejects non-string code with a TypeError before creating a session', async () => {
    const broker = makeBroker({ sessions: { maxSessions: 1 } });
    for (const code of [undefined, null, 5, {}, ['x'], () => 'return 1']) {
      await expect(broker.execute(code)).rejects.toThrow(TypeError);
    }
    await expect(broker.execute(42)).rejects.toThrow('Script code must be a string, got number');
    expect(broker.stats().totalSessions).toBe(0);
    expect((await broker.execute('return "still fine"')).value).toBe('still fine');
  });

  it('returns a promise even for lifecycle errors', () => {
    const broker = makeBroker({ sessions: { maxSessions: 0 } });
    const p = broker.execute('1');
    expect(p).toBeInstanceOf(Promise);
    return expect(p).rejects.toThrow(MAX_SESSIONS(0));
  });

  it('resolves script results: numbers, objects, last-expression, undefined, empty code', async () => {
    const broker = makeBroker();
    expect((await broker.execute('return 1 + 2')).value).toBe(3);
    const obj = await broker.execute("return { a: [1, { b: 'x' }], n: null, u: undefined, d: 1.5 }");
    expect(obj.value).toEqual({ a: [1, { b: 'x' }], n: null, d: 1.5 });
    expect('u' in obj.value).toBe(false);
    for (const code of ['const x = 1;', '', '// only a comment']) {
      const r = await broker.execute(code);
      expect(r.success).toBe(true);
      expect('value' in r).toBe(false);
      expect(r.finalState).toBe('completed');
    }
  });

  it('converts returned values to plain data (Date, Map, Set, BigInt, circular)', async () => {
    const broker = makeBroker();
    expect((await broker.execute('return new Date(0)')).value).toBe('1970-01-01T00:00:00.000Z');
    const r = await broker.execute("return {m: new Map([['a', 1]]), s: new Set([1, 2]), b: 10n, d: new Date(0)}");
    expect(r.value).toEqual({ m: { a: 1 }, s: [1, 2], b: '10', d: '1970-01-01T00:00:00.000Z' });
    const c = await broker.execute('const o = {a: 1}; o.self = o; return o');
    expect(c.value).toEqual({ a: 1, self: '[Circular]' });
    const f = await broker.execute('return () => 1');
    expect(f.success).toBe(false);
    expect(f.error.code).toBe('EXECUTION_ERROR');
  });

  it('runs ordinary JavaScript (functions, classes, while, regex, Map, Error)', async () => {
    const broker = makeBroker();
    const r = await broker.execute(`
      function sq(x) { return x * x; }
      class P { constructor(v) { this.v = v; } get double() { return this.v * 2; } }
      let i = 0, acc = 0;
      while (i < 5) { acc += sq(i); i++; }
      const m = new Map([['k', /a+b/.test('aab')]]);
      const e = new Error('x');
      return { acc, d: new P(4).double, m: m.get('k'), e: e instanceof Error };
    `);
    expect(r.value).toEqual({ acc: 30, d: 8, m: true, e: true });
  });

  it('reports a syntax error as VALIDATION_ERROR / SyntaxError with a position', async () => {
    const broker = makeBroker();
    const { events, onEvent } = collector();
    const r = await broker.execute('const = 1', { onEvent });
    expect(r.success).toBe(false);
    expect(r.finalState).toBe('failed');
    expect(r.error).toEqual({
      message: "Failed to parse AgentScript code: Unexpected token '=' (1:6)",
      name: 'SyntaxError',
      code: 'VALIDATION_ERROR',
    });
    expect(events.map((e) => e.type)).toEqual(['session_init', 'final']);
    expect(events[1].payload.error).toEqual({ code: 'VALIDATION_ERROR', message: r.error.message });
    const r2 = await broker.execute('let x = 1;\nlet y = ;');
    expect(r2.error.message).toBe("Failed to parse AgentScript code: Unexpected token ';' (2:8)");
    const r3 = await broker.execute('return (');
    expect(r3.error.code).toBe('VALIDATION_ERROR');
    expect(r3.error.name).toBe('SyntaxError');
    expect(r3.error.message).toMatch(/^Failed to parse AgentScript code: .+ \(\d+:\d+\)$/);
  });

  it('reports an uncaught throw as EXECUTION_ERROR with the error name and message', async () => {
    const broker = makeBroker();
    const cases = [
      ["throw new Error('boom')", { message: 'boom', name: 'Error' }],
      ["throw new TypeError('bad type')", { message: 'bad type', name: 'TypeError' }],
      ['const o = null; return o.x;', { message: "Cannot read properties of null (reading 'x')", name: 'TypeError' }],
      ["throw 'just a string'", { message: 'just a string', name: 'Error' }],
      ["throw { message: 'obj thrown', code: 'X' }", { message: 'obj thrown', name: 'Error' }],
      ['class MyErr extends Error { constructor(m) { super(m); this.name = "MyErr"; } } throw new MyErr("mine")', { message: 'mine', name: 'MyErr' }],
    ];
    for (const [code, error] of cases) {
      const r = await broker.execute(code);
      expect(r.success).toBe(false);
      expect(r.finalState).toBe('failed');
      expect(r.error).toEqual({ ...error, code: 'EXECUTION_ERROR' });
    }
  });

  it('stops a runaway script at toolTimeoutMs with TIMEOUT', async () => {
    const broker = makeBroker();
    const started = Date.now();
    const r = await broker.execute('while (true) {}', { session: { limits: { toolTimeoutMs: 200 } } });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(r.error).toEqual({ message: 'Script execution timed out after 200ms', name: 'Error', code: 'TIMEOUT' });
    expect(r.finalState).toBe('failed');
  });

  it('fails the (N+1)th tool call with MAX_TOOL_CALLS_EXCEEDED', async () => {
    const broker = makeBroker().tool('add', { handler: ({ a, b }) => a + b });
    const r = await broker.execute(
      "let s = 0; for (let i = 0; i < 5; i++) s = await callTool('add', {a: s, b: 1}); return s;",
      { session: { limits: { maxToolCalls: 2 } } },
    );
    expect(r.error).toEqual({
      message: 'Maximum tool call limit exceeded (2). This limit prevents runaway script execution.',
      name: 'Error',
      code: 'MAX_TOOL_CALLS_EXCEEDED',
    });
    expect(r.stats.toolCallCount).toBe(2);
  });

  it('stops a script at enclave.memoryLimit with MEMORY_LIMIT_EXCEEDED', async () => {
    const broker = makeBroker();
    const limit = 16 * 1024 * 1024;
    const r = await broker.execute("const a = []; while (true) a.push('x'.repeat(1000) + a.length)", {
      session: { enclaveConfig: { memoryLimit: limit } },
    });
    expect(r.success).toBe(false);
    expect(r.error.code).toBe('MEMORY_LIMIT_EXCEEDED');
    expect(r.error.name).toBe('MemoryLimitError');
    const match = /^Memory limit exceeded: the script's heap reached the (\d+\.\d\d)MB limit \((\d+\.\d\d)MB in use\)$/.exec(
      r.error.message,
    );
    expect(match, r.error.message).not.toBeNull();
    expect(Number(match[1])).toBe(16);
    // V8 stops the script when its collector can no longer keep the heap within the limit,
    // which is before the live heap itself reaches it.
    expect(Number(match[2]), r.error.message).toBeGreaterThan(0);
    expect(Number(match[2]), r.error.message).toBeLessThanOrEqual(16);
    // Below the limit, the same kind of allocation succeeds.
    const ok = await broker.execute(
      "const a = []; for (let i = 0; i < 4096; i++) a.push('x'.repeat(1000) + i); return a.length",
      { session: { enclaveConfig: { memoryLimit: limit } } },
    );
    expect(ok.value).toBe(4096);
  });

  it('merges session config shallowly: a session limits key replaces the broker limits (Q1)', async () => {
    const broker = makeBroker({ limits: { maxToolCalls: 1 } }).tool('one', { handler: () => 1 });
    const code = "await callTool('one', {}); return await callTool('one', {})";
    expect((await broker.execute(code)).error.code).toBe('MAX_TOOL_CALLS_EXCEEDED');
    expect((await broker.execute(code, { session: { limits: { deadlineMs: 5000 } } })).value).toBe(1);
    expect((await broker.execute(code, { session: { limits: undefined } })).value).toBe(1);
    expect((await broker.execute(code, { session: { sessionId: 'keeps-broker-limits' } })).error.code).toBe(
      'MAX_TOOL_CALLS_EXCEEDED',
    );
  });

  it('uses broker limits for createSession too (heartbeats, ttl)', async () => {
    const broker = makeBroker({ limits: { sessionTtlMs: 5000 } });
    const s = broker.createSession();
    expect(s.expiresAt - s.createdAt).toBe(5000);
    const t = broker.createSession({ limits: {} });
    expect(t.expiresAt - t.createdAt).toBe(60000);
  });
});

describe('dispose', () => {
  it('is idempotent; createSession and execute then throw "Broker is disposed"', async () => {
    const broker = makeBroker().tool('x', { handler: () => 1 }).secret('K', 'v');
    expect(broker.isDisposed).toBe(false);
    const p = broker.dispose();
    expect(p).toBeInstanceOf(Promise);
    await p;
    await broker.dispose();
    expect(broker.isDisposed).toBe(true);
    expect(() => broker.createSession()).toThrow(new Error('Broker is disposed'));
    const exec = broker.execute('return 1');
    expect(exec).toBeInstanceOf(Promise);
    await expect(exec).rejects.toThrow(new Error('Broker is disposed'));
    // Tools and secrets were cleared; tool() still works after dispose, as the original.
    expect(broker.hasSecret('K')).toBe(false);
    expect(broker.stats()).toEqual({ tools: 0, activeSessions: 0, totalSessions: 0 });
    broker.tool('x', { handler: () => 1 });
    expect(broker.listTools()).toEqual(['x']);
    expect(broker.stats().tools).toBe(1);
    // The read-only and housekeeping methods keep working on the empty broker.
    expect(broker.listSessions()).toEqual([]);
    expect(broker.listActiveSessions()).toEqual([]);
    expect(broker.getSession('s_x')).toBeUndefined();
    expect(broker.cleanup()).toBe(0);
    expect(await broker.terminateSession('s_x')).toBe(false);
  });

  it('cancels every session with "Session manager disposed"; running executions resolve', async () => {
    const broker = makeBroker();
    const hang = hangingTool();
    broker.tool('hang', hang.def);
    const idle = broker.createSession();
    const running = broker.execute("return await callTool('hang', {})");
    await waitFor(() => hang.calls.length === 1);
    await broker.dispose();
    expect(idle.state).toBe('cancelled');
    expect(idle.getEvents().map((e) => e.type)).toEqual(['error', 'final']);
    expect(idle.getEvents()[0].payload).toEqual({
      code: 'SESSION_CANCELLED',
      message: 'Session manager disposed',
      recoverable: false,
    });
    expect((await idle.wait()).error).toEqual({
      message: 'Session manager disposed',
      name: 'Error',
      code: 'SESSION_CANCELLED',
    });
    const result = await settleWithin(running, 2000);
    expect(result).toMatchObject({ success: false, error: { code: 'SESSION_CANCELLED' }, finalState: 'cancelled' });
    expect(hang.calls[0].aborted).toBe(true);
    await waitFor(() => hostCounts().runsInFlight === 0);
    expect(hostCounts()).toEqual(NO_LEAKS);
  });
});
