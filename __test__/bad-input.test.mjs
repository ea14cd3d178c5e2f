// Bad input never crashes Node: it gives a clear error (or a failed result) and leaves
// nothing behind.
import { describe, it, expect, afterEach } from 'vitest';
import { ToolRegistry, createBroker, createBrokerSession, createSessionManager } from '../index.mjs';
import { NO_LEAKS, collector, hangingTool, hostCounts, settleWithin, waitFor } from './helpers/index.mjs';

const MAX_SESSIONS = (n) =>
  `Maximum sessions reached (${n}). Wait for existing sessions to complete or increase maxSessions.`;
const handler = () => 1;

const brokers = [];
function makeBroker(config) {
  const broker = createBroker(config);
  brokers.push(broker);
  broker.tool('echo', { handler: (args) => args });
  return broker;
}

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.dispose()));
});

describe('non-string code', () => {
  it('broker.execute, session.execute and executeAndWait reject with a TypeError', async () => {
    const broker = makeBroker();
    const session = broker.createSession();
    const manager = createSessionManager(new ToolRegistry());
    try {
      for (const code of [undefined, null, 0, 1n, true, {}, [], Symbol('s'), () => 'return 1', new String('x')]) {
        await expect(broker.execute(code)).rejects.toThrow(TypeError);
        await expect(session.execute(code)).rejects.toThrow(TypeError);
        await expect(manager.executeAndWait(code)).rejects.toThrow(TypeError);
      }
      await expect(broker.execute(null)).rejects.toThrow('Script code must be a string, got null');
      await expect(broker.execute({})).rejects.toThrow('Script code must be a string, got object');
      expect(broker.stats()).toEqual({ tools: 1, activeSessions: 1, totalSessions: 1 });
      expect(manager.totalCount).toBe(0);
      expect(session.state).toBe('starting');
      expect((await session.execute('return 1')).value).toBe(1);
    } finally {
      await manager.dispose();
    }
  });
});

describe('bad arguments inside the script', () => {
  it('non-object args: a catchable TypeError, no tool_call event, not counted', async () => {
    const broker = makeBroker();
    for (const args of ['5', 'null', '[1, 2]', "'str'", 'undefined', 'true', '() => 1']) {
      const { events, onEvent } = collector();
      const r = await broker.execute(`return await callTool('echo', ${args})`, { onEvent });
      expect(r.error).toEqual({ message: 'Tool arguments must be an object', name: 'TypeError', code: 'EXECUTION_ERROR' });
      expect(r.stats.toolCallCount).toBe(0);
      expect(events.map((e) => e.type)).toEqual(['session_init', 'final']);
    }
    const caught = await broker.execute(
      "try { await callTool('echo', 5) } catch (e) { return [e instanceof TypeError, e.message] }",
    );
    expect(caught.value).toEqual([true, 'Tool arguments must be an object']);
  });

  it('unserializable args and a non-string tool name', async () => {
    const broker = makeBroker();
    for (const code of [
      "return await callTool('echo', {a: 1n})",
      "const o = {}; o.o = o; return await callTool('echo', o)",
      "return await callTool('echo', {toJSON() { throw new Error('no') }})",
    ]) {
      const r = await broker.execute(code);
      expect(r.error).toEqual({
        message: 'Tool arguments must be JSON-serializable',
        name: 'TypeError',
        code: 'EXECUTION_ERROR',
      });
    }
    expect((await broker.execute('return await callTool(42, {})')).error.message).toBe('Tool name must be a string');
    expect((await broker.execute('return await callTool()')).error.message).toBe('Tool name must be a string');
    // JSON semantics: functions and undefined dropped, Dates become strings.
    const r = await broker.execute("return await callTool('echo', {f: () => 1, u: undefined, d: new Date(0), n: 1})");
    expect(r.value).toEqual({ d: '1970-01-01T00:00:00.000Z', n: 1 });
  });
});

describe('bad tool results and errors', () => {
  it('a function (top level or nested) or a symbol fails the call with a clear, catchable error', async () => {
    const broker = makeBroker();
    broker.tool('fn', { handler: () => () => 1 });
    broker.tool('nestedFn', { handler: () => ({ a: { b: [1, () => 2] } }) });
    broker.tool('sym', { handler: () => ({ s: Symbol('x') }) });
    const fnMessage =
      'Tool handler returned a function. Functions cannot be returned to sandbox code as they could be used for code injection or host scope access.';
    for (const tool of ['fn', 'nestedFn']) {
      const r = await broker.execute(`return await callTool('${tool}', {})`);
      expect(r.success).toBe(false);
      expect(r.error.message).toBe(fnMessage);
      expect(r.error.code).toBe('TOOL_ERROR');
    }
    const caught = await broker.execute("try { await callTool('fn', {}) } catch (e) { return e.message } ");
    expect(caught.value).toBe(fnMessage);
    const sym = await broker.execute("return await callTool('sym', {})");
    expect(sym.error.message).toBe('Tool handler returned a symbol. Symbols cannot be returned to sandbox code.');
  });

  it('a circular object arrives with "[Circular]" in place of the cycle', async () => {
    const broker = makeBroker();
    broker.tool('circ', {
      handler: () => {
        const o = { a: 1, list: [] };
        o.self = o;
        o.list.push(o, { up: o.list });
        return o;
      },
    });
    const r = await broker.execute("const v = await callTool('circ', {}); return {v, s: v.self}");
    expect(r.value).toEqual({
      v: { a: 1, list: ['[Circular]', { up: '[Circular]' }], self: '[Circular]' },
      s: '[Circular]',
    });
  });

  it('too deep, throwing getters, throwing proxies: a failed call, not a crash', async () => {
    const broker = makeBroker();
    broker.tool('deep', {
      handler: () => {
        const root = {};
        let o = root;
        for (let i = 0; i < 30; i++) o = o.c = {};
        return root;
      },
    });
    broker.tool('getter', {
      handler: () => ({
        get x() {
          throw new Error('getter in result');
        },
      }),
    });
    broker.tool('proxy', {
      handler: () =>
        new Proxy(
          {},
          {
            ownKeys() {
              throw new Error('proxy keys');
            },
          },
        ),
    });
    const deep = await broker.execute("return await callTool('deep', {})");
    expect(deep.error.message).toBe(
      'Tool handler return value exceeds maximum depth (20). This limit prevents deeply nested objects that could cause stack overflow.',
    );
    expect((await broker.execute("return await callTool('getter', {})")).error.message).toBe('getter in result');
    expect((await broker.execute("return await callTool('proxy', {})")).error.message).toBe('proxy keys');
  });

  it('handlers throwing odd values: null, undefined, symbols, unreadable objects', async () => {
    const broker = makeBroker();
    const unreadable = {
      get message() {
        throw new Error('message getter');
      },
      get code() {
        throw new Error('code getter');
      },
    };
    const throwers = {
      nul: null,
      undef: undefined,
      sym: Symbol('s'),
      unreadable,
      nullProto: Object.create(null),
      numCode: Object.assign(new Error('numbered'), { code: 404 }),
    };
    for (const [name, value] of Object.entries(throwers)) {
      broker.tool(name, {
        handler: () => {
          throw value;
        },
      });
    }
    const results = {};
    for (const name of Object.keys(throwers)) {
      const r = await settleWithin(broker.execute(`return await callTool('${name}', {})`), 3000);
      expect(r.success).toBe(false);
      results[name] = [r.error.code, r.error.message];
    }
    expect(results).toEqual({
      nul: ['EXECUTION_ERROR', 'null'],
      undef: ['EXECUTION_ERROR', 'undefined'],
      sym: ['EXECUTION_ERROR', 'Symbol(s)'],
      unreadable: ['EXECUTION_ERROR', '[object Object]'],
      nullProto: ['EXECUTION_ERROR', '[object Object]'],
      numCode: ['404', 'numbered'],
    });
    // The registry's execute() never throws, even for these.
    const registry = new ToolRegistry();
    registry.register({
      name: 'u',
      handler: () => {
        throw unreadable;
      },
    });
    await expect(registry.execute('u', {}, {})).resolves.toMatchObject({ success: false });
  });

  it('an error message with a lone surrogate is kept (lossily), not replaced', async () => {
    const broker = makeBroker();
    const r = await broker.execute("throw new TypeError('bad \\uD800 text')");
    expect(r.error.code).toBe('EXECUTION_ERROR');
    expect(r.error.name).toBe('TypeError');
    expect(['bad \uD800 text', 'bad \uFFFD text']).toContain(r.error.message);
    const out = await broker.execute("console.log('a\\uD800b'); return 'c\\uDC00d'");
    expect(out.success).toBe(true);
    expect(['c\uDC00d', 'c\uFFFDd']).toContain(out.value);
  });

  it('a schema that throws while validating is a VALIDATION_ERROR', async () => {
    const broker = makeBroker();
    broker.tool('weird', {
      argsSchema: {
        safeParse() {
          throw new Error('schema broke');
        },
      },
      handler: () => 1,
    });
    const r = await broker.execute("return await callTool('weird', {})");
    expect(r.error).toEqual({ message: 'Invalid arguments: schema broke', name: 'Error', code: 'VALIDATION_ERROR' });
  });
});

describe('a handler that never resolves', () => {
  it('the session can still be cancelled, terminated, or disposed with its broker', async () => {
    const broker = makeBroker();
    const hang = hangingTool();
    broker.tool('hang', hang.def);

    const a = broker.createSession();
    const pa = a.execute("return await callTool('hang', {})");
    await waitFor(() => hang.calls.length === 1);
    await a.cancel('give up');
    expect((await settleWithin(pa, 2000)).error.code).toBe('SESSION_CANCELLED');

    const b = broker.createSession();
    const pb = b.execute("return await callTool('hang', {})");
    await waitFor(() => hang.calls.length === 2);
    expect(await broker.terminateSession(b.sessionId)).toBe(true);
    expect((await settleWithin(pb, 2000)).error.code).toBe('SESSION_CANCELLED');

    const pc = broker.execute("return await parallel([1, 2], () => callTool('hang', {}))");
    await waitFor(() => hang.calls.length === 4);
    await broker.dispose();
    expect((await settleWithin(pc, 2000)).error.code).toBe('SESSION_CANCELLED');

    expect(hang.calls.every((c) => c.aborted)).toBe(true);
    await waitFor(() => hostCounts().runsInFlight === 0);
    expect(hostCounts()).toEqual(NO_LEAKS);
  });

  it('a late answer after cancel is ignored', async () => {
    const broker = makeBroker();
    let release;
    broker.tool('late', { handler: () => new Promise((r) => (release = r)) });
    const session = broker.createSession();
    const pending = session.execute("return await callTool('late', {})");
    await waitFor(() => release !== undefined);
    await session.cancel();
    const r = await settleWithin(pending, 2000);
    release('too late');
    await new Promise((r2) => setTimeout(r2, 20));
    expect(r.error.code).toBe('SESSION_CANCELLED');
    expect(session.getEvents().at(-1).type).toBe('final');
    expect(session.getEvents().filter((e) => e.type === 'final')).toHaveLength(1);
  });
});

describe('cancel races', () => {
  it('cancel at any moment: every run settles cancelled or completed, with a consistent stream', async () => {
    const broker = makeBroker({ sessions: { maxSessions: 1000 } });
    broker.tool('add', { handler: ({ a, b }) => a + b });
    const runs = [];
    for (let i = 0; i < 120; i++) {
      const session = broker.createSession();
      const live = [];
      session.onEvent((e) => live.push(e));
      const code =
        i % 8 === 0
          ? 'let x = 0; while (true) x++'
          : "let s = 0; for (let i = 0; i < 20; i++) s += await callTool('add', {a: i, b: 1}); return s";
      const pending = session.execute(code);
      if (i % 5 === 0) session.cancel();
      else setTimeout(() => session.cancel(), i % 7);
      runs.push(pending.then((result) => ({ result, live, session })));
    }
    const settled = await settleWithin(Promise.all(runs), 10000);
    expect(settled).not.toBe('PENDING');
    for (const { result, live, session } of settled) {
      expect(['SESSION_CANCELLED', undefined]).toContain(result.error?.code);
      const all = session.getEvents();
      expect(live).toEqual(all);
      expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
      expect(all.filter((e) => e.type === 'final')).toHaveLength(1);
      expect(all.at(-1).type).toBe('final');
      const calls = all.filter((e) => e.type === 'tool_call').length;
      expect(all.filter((e) => e.type === 'tool_result_applied')).toHaveLength(calls);
      expect(result.stats.toolCallCount).toBe(calls);
    }
    expect(broker.cleanup()).toBe(120);
    await waitFor(() => hostCounts().runsInFlight === 0);
    expect(hostCounts()).toEqual(NO_LEAKS);
  });
});

describe('1,000 sessions at once', () => {
  it('createSession: 100 succeed, 900 get the exact maxSessions error; nothing leaks', async () => {
    const broker = makeBroker();
    const created = [];
    const errors = [];
    for (let i = 0; i < 1000; i++) {
      try {
        created.push(broker.createSession());
      } catch (error) {
        errors.push(error);
      }
    }
    expect(created).toHaveLength(100);
    expect(errors).toHaveLength(900);
    expect(new Set(errors.map((e) => e.message))).toEqual(new Set([MAX_SESSIONS(100)]));
    expect(errors.every((e) => e instanceof Error)).toBe(true);
    expect(broker.stats()).toEqual({ tools: 1, activeSessions: 100, totalSessions: 100 });
    expect(broker.cleanup()).toBe(0);
    await Promise.all(created.map((s) => s.cancel()));
    expect(broker.cleanup()).toBe(100);
    expect(broker.stats()).toEqual({ tools: 1, activeSessions: 0, totalSessions: 0 });
    expect(broker.listSessions()).toEqual([]);
    expect(hostCounts()).toEqual(NO_LEAKS);
  });

  it('execute: 100 run, 900 reject with the maxSessions error; counts return to 0', async () => {
    const broker = makeBroker();
    const settled = await Promise.allSettled(
      Array.from({ length: 1000 }, (_, i) => broker.execute(`return (await callTool('echo', {i: ${i}})).i`)),
    );
    const fulfilled = settled.filter((s) => s.status === 'fulfilled');
    const rejected = settled.filter((s) => s.status === 'rejected');
    expect(fulfilled).toHaveLength(100);
    expect(fulfilled.every((s, i) => s.value.success && s.value.value === i)).toBe(true);
    expect(rejected).toHaveLength(900);
    expect(new Set(rejected.map((s) => s.reason.message))).toEqual(new Set([MAX_SESSIONS(100)]));
    expect(broker.stats()).toEqual({ tools: 1, activeSessions: 0, totalSessions: 0 });
    expect(hostCounts()).toEqual(NO_LEAKS);
    // Capacity is back.
    expect((await broker.execute('return "again"')).value).toBe('again');
  });

  it('1,000 concurrent executions with maxSessions 1000 all complete', async () => {
    const broker = makeBroker({ sessions: { maxSessions: 1000 } });
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => broker.execute(`return (await callTool('echo', {i: ${i}})).i * 2`)),
    );
    expect(results.every((r, i) => r.value === i * 2)).toBe(true);
    expect(broker.stats().totalSessions).toBe(0);
    expect(hostCounts()).toEqual(NO_LEAKS);
  });
});

describe('invalid limits give a clear TypeError', () => {
  const cases = [
    [{ maxToolCalls: -1 }, 'Invalid session limit "maxToolCalls": expected a non-negative number, got -1'],
    [{ deadlineMs: NaN }, 'Invalid session limit "deadlineMs": expected a non-negative number, got NaN'],
    [{ toolTimeoutMs: '100' }, 'Invalid session limit "toolTimeoutMs": expected a non-negative number, got "100"'],
    [{ heartbeatIntervalMs: null }, 'Invalid session limit "heartbeatIntervalMs": expected a non-negative number, got null'],
    [{ cancelOnFirstError: 'yes' }, 'Invalid session limit "cancelOnFirstError": expected a boolean, got "yes"'],
    [5, 'Session limits must be an object'],
    [[1], 'Session limits must be an object'],
  ];

  it('in createSession, execute options, createBrokerSession, SessionManager.create', async () => {
    const broker = makeBroker();
    const manager = createSessionManager(new ToolRegistry());
    try {
      for (const [limits, message] of cases) {
        expect(() => broker.createSession({ limits })).toThrow(new TypeError(message));
        await expect(broker.execute('1', { session: { limits } })).rejects.toThrow(new TypeError(message));
        expect(() => createBrokerSession(new ToolRegistry(), { limits })).toThrow(new TypeError(message));
        expect(() => manager.create({ limits })).toThrow(new TypeError(message));
      }
      expect(broker.stats().totalSessions).toBe(0);
      expect(manager.totalCount).toBe(0);
    } finally {
      await manager.dispose();
    }
  });

  it('in createBroker, at construction', () => {
    for (const [limits, message] of cases) {
      expect(() => createBroker({ limits })).toThrow(new TypeError(message));
    }
    expect(() => createBroker({ sessions: { maxSessions: -5 } })).toThrow(TypeError);
    expect(() => createBroker({ sessions: { cleanupIntervalMs: 'soon' } })).toThrow(TypeError);
    expect(() => createBroker({ enclave: 5 })).toThrow(new TypeError('enclaveConfig must be an object'));
  });

  it('Infinity and 0 are accepted (no limit / off)', async () => {
    const broker = makeBroker();
    const r = await broker.execute('return 1', {
      session: { limits: { maxToolCalls: Infinity, heartbeatIntervalMs: 0, deadlineMs: 0 } },
    });
    expect(r.value).toBe(1);
  });

  it('bad session config and execute options', async () => {
    const broker = makeBroker();
    expect(() => broker.createSession('x')).toThrow(new TypeError('Session config must be an object'));
    expect(() => broker.createSession({ sessionId: 5 })).toThrow(new TypeError('sessionId must be a string, got 5'));
    await expect(broker.execute('1', null)).rejects.toThrow(new TypeError('execute options must be an object'));
    await expect(broker.execute('1', { onEvent: 'x' })).rejects.toThrow(new TypeError('onEvent handler must be a function'));
    await expect(broker.execute('1', { session: 7 })).rejects.toThrow(TypeError);
    expect(broker.stats().totalSessions).toBe(0);
  });
});

describe('invalid tool definitions', () => {
  it('are rejected with a TypeError and leave the registry unchanged', () => {
    const broker = makeBroker();
    const cases = [
      [() => broker.tool('t', null), 'Tool "t" definition must be an object'],
      [() => broker.tool('t', 'nope'), 'Tool "t" definition must be an object'],
      [() => broker.tool('t', {}), 'Tool "t" needs a handler function'],
      [() => broker.tool('t', { handler: 'x' }), 'Tool "t" needs a handler function'],
      [() => broker.tool('t', { handler, argsSchema: 5 }), 'Tool "t" argsSchema must be a zod schema (safeParse or parse)'],
      [() => broker.tool('t', { handler, argsSchema: {} }), 'Tool "t" argsSchema must be a zod schema (safeParse or parse)'],
      [() => broker.tool('t', { handler, secrets: 'KEY' }), 'Tool "t" secrets must be an array of strings'],
      [() => broker.tool('t', { handler, secrets: [1] }), 'Tool "t" secrets must be an array of strings'],
      [() => broker.tool('', { handler }), 'Tool name must be a non-empty string'],
      [() => broker.tool(5, { handler }), 'Tool name must be a non-empty string'],
      [() => broker.tools(null), 'Tool definitions must be an object of name → definition'],
    ];
    for (const [fn, message] of cases) {
      expect(fn).toThrow(new TypeError(message));
    }
    const registry = new ToolRegistry();
    expect(() => registry.register(null)).toThrow(new TypeError('Tool definition must be an object'));
    expect(() => registry.register({ handler })).toThrow(new TypeError('Tool name must be a non-empty string'));
    expect(registry.size).toBe(0);
    expect(broker.listTools()).toEqual(['echo']);
  });

  it('bad secrets input', () => {
    const broker = makeBroker();
    expect(() => broker.secret(5, 'v')).toThrow(new TypeError('Secret key must be a string'));
    expect(() => broker.secrets(null)).toThrow(new TypeError('Secrets must be an object of key → value'));
  });
});
