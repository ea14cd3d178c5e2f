// ToolRegistry / createToolRegistry (1.E, 1.F in docs/compatibility.md): registration, zod 4 and zod 3
// validation, secrets, ToolContext, handler results and errors as scripts see them.
import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import { z as z3 } from 'zod3';
import { ToolRegistry, createToolRegistry } from '../index.mjs';
import { CALL_ID_RE, SESSION_ID_RE, brokersDisposedAfterEach, collector } from './helpers/index.mjs';

const makeBroker = brokersDisposedAfterEach();

describe('registry API', () => {
  it('createToolRegistry() is new ToolRegistry()', () => {
    expect(createToolRegistry()).toBeInstanceOf(ToolRegistry);
    expect(createToolRegistry().size).toBe(0);
  });

  it('register / has / get / list / size / unregister / clear', () => {
    const registry = createToolRegistry();
    const def = { name: 'a', description: 'A', handler: () => 1 };
    expect(registry.register(def)).toBeUndefined();
    registry.register({ name: 'b', handler: () => 2 });
    expect(registry.has('a')).toBe(true);
    expect(registry.has('z')).toBe(false);
    expect(registry.get('a')).toBe(def);
    expect(registry.get('z')).toBeUndefined();
    expect(registry.list()).toEqual(['a', 'b']);
    expect(registry.size).toBe(2);
    expect(() => registry.register({ name: 'a', handler: () => 3 })).toThrow(new Error('Tool "a" is already registered'));
    expect(registry.unregister('a')).toBe(true);
    expect(registry.unregister('a')).toBe(false);
    expect(registry.list()).toEqual(['b']);
    registry.clear();
    expect(registry.size).toBe(0);
    expect(registry.list()).toEqual([]);
  });

  it('replace upserts', async () => {
    const registry = createToolRegistry();
    registry.replace({ name: 'r', handler: () => 'first' });
    registry.replace({ name: 'r', handler: () => 'second' });
    expect(registry.size).toBe(1);
    expect((await registry.execute('r', {}, {})).value).toBe('second');
  });

  it('getConfigs contains only tools with a config; config is stored, not enforced', () => {
    const registry = createToolRegistry();
    registry.register({ name: 'a', handler: () => 1, config: { timeout: 5, retryable: true } });
    registry.register({ name: 'b', handler: () => 1 });
    expect(registry.getConfigs()).toEqual({ a: { timeout: 5, retryable: true } });
  });

  it('secrets: setSecret / hasSecret / removeSecret / getRequiredSecrets / clearSecrets', () => {
    const registry = createToolRegistry();
    registry.register({ name: 's', handler: () => 1, secrets: ['K1', 'K2'] });
    registry.setSecret('K1', 'v1');
    expect(registry.hasSecret('K1')).toBe(true);
    expect(registry.removeSecret('K1')).toBe(true);
    expect(registry.removeSecret('K1')).toBe(false);
    expect(registry.getRequiredSecrets('s')).toEqual(['K1', 'K2']);
    expect(registry.getRequiredSecrets('none')).toEqual([]);
    registry.setSecret('K2', 'v2');
    registry.clearSecrets();
    expect(registry.hasSecret('K2')).toBe(false);
  });
});

describe('validate', () => {
  it('unknown tool and the default record schema', () => {
    const registry = createToolRegistry();
    registry.register({ name: 'free', handler: () => 1 });
    expect(registry.validate('nope', {})).toEqual({ success: false, error: 'Unknown tool: nope' });
    expect(registry.validate('free', { any: 1 })).toEqual({ success: true, validatedArgs: { any: 1 } });
    const bad = registry.validate('free', 5);
    expect(bad.success).toBe(false);
    expect(bad.error).toMatch(/^Invalid arguments: /);
  });

  it('zod 4: "Invalid arguments: " + the pretty-printed issues; parsed output is returned', () => {
    const registry = createToolRegistry();
    const schema = z.object({ name: z.string(), n: z.number().default(7) });
    registry.register({ name: 't', argsSchema: schema, handler: () => 1 });
    expect(registry.validate('t', { name: 1 })).toEqual({
      success: false,
      error:
        'Invalid arguments: [\n  {\n    "expected": "string",\n    "code": "invalid_type",\n    "path": [\n      "name"\n    ],\n    "message": "Invalid input: expected string, received number"\n  }\n]',
    });
    expect(registry.validate('t', { name: 'x', extra: true })).toEqual({
      success: true,
      validatedArgs: { name: 'x', n: 7 },
    });
  });

  it('zod 3: the same form with zod 3 issues', () => {
    const registry = createToolRegistry();
    const schema = z3.object({ name: z3.string() });
    registry.register({ name: 't', argsSchema: schema, handler: () => 1 });
    const result = registry.validate('t', { name: 1 });
    expect(result).toEqual({
      success: false,
      error:
        'Invalid arguments: [\n  {\n    "code": "invalid_type",\n    "expected": "string",\n    "received": "number",\n    "path": [\n      "name"\n    ],\n    "message": "Expected string, received number"\n  }\n]',
    });
    expect(result.error).toBe(`Invalid arguments: ${schema.safeParse({ name: 1 }).error.message}`);
  });
});

describe('execute (never throws)', () => {
  it('checks UNKNOWN_TOOL, VALIDATION_ERROR, SECRET_ERROR in that order', async () => {
    const registry = createToolRegistry();
    registry.register({ name: 'v', argsSchema: z.object({ a: z.number() }), secrets: ['S'], handler: () => 'ran' });
    const unknown = await registry.execute('nope', {}, { sessionId: 's_1', callId: 'c_1' });
    expect(unknown).toEqual({
      success: false,
      error: { code: 'UNKNOWN_TOOL', message: 'Unknown tool: nope' },
      durationMs: unknown.durationMs,
    });
    expect(typeof unknown.durationMs).toBe('number');
    const invalid = await registry.execute('v', { a: 'x' }, {});
    expect(invalid.error.code).toBe('VALIDATION_ERROR');
    expect(invalid.error.message).toMatch(/^Invalid arguments: \[/);
    const secret = await registry.execute('v', { a: 1 }, {});
    expect(secret.error).toEqual({ code: 'SECRET_ERROR', message: 'Missing required secret "S" for tool "v"' });
    registry.setSecret('S', 'x');
    const ok = await registry.execute('v', { a: 1 }, {});
    expect(ok).toEqual({ success: true, value: 'ran', durationMs: ok.durationMs });
  });

  it('maps handler failures: own code, else EXECUTION_ERROR; non-Error throws; async rejections', async () => {
    const registry = createToolRegistry();
    registry.register({
      name: 'coded',
      handler: () => {
        throw Object.assign(new Error('denied'), { code: 'FORBIDDEN' });
      },
    });
    registry.register({ name: 'plain', handler: async () => Promise.reject(new Error('nope')) });
    registry.register({
      name: 'str',
      handler: () => {
        throw 'a string';
      },
    });
    expect((await registry.execute('coded', {}, {})).error).toEqual({ code: 'FORBIDDEN', message: 'denied' });
    expect((await registry.execute('plain', {}, {})).error).toEqual({ code: 'EXECUTION_ERROR', message: 'nope' });
    expect((await registry.execute('str', {}, {})).error).toEqual({ code: 'EXECUTION_ERROR', message: 'a string' });
  });
});

describe('tools as scripts see them', () => {
  it('passes zod parsed output to the handler; tool_call carries the raw args', async () => {
    const broker = makeBroker();
    let received;
    broker.tool('parse', {
      argsSchema: z.object({ a: z.number(), d: z.string().default('dflt'), n: z.string().transform(Number) }),
      handler: (args) => {
        received = args;
        return args;
      },
    });
    const { events, onEvent } = collector();
    const r = await broker.execute("return await callTool('parse', {a: 1, n: '42', extra: true})", { onEvent });
    expect(received).toEqual({ a: 1, d: 'dflt', n: 42 });
    expect(r.value).toEqual({ a: 1, d: 'dflt', n: 42 });
    expect(events.find((e) => e.type === 'tool_call').payload.args).toEqual({ a: 1, n: '42', extra: true });
  });

  it('zod 4 failure ends the run with VALIDATION_ERROR and the registry message', async () => {
    const broker = makeBroker();
    broker.tool('add', { argsSchema: z.object({ a: z.number(), b: z.number() }), handler: ({ a, b }) => a + b });
    const r = await broker.execute("return await callTool('add', {a: 'x', b: 2})");
    expect(r.error).toEqual({
      message:
        'Invalid arguments: [\n  {\n    "expected": "number",\n    "code": "invalid_type",\n    "path": [\n      "a"\n    ],\n    "message": "Invalid input: expected number, received string"\n  }\n]',
      name: 'Error',
      code: 'VALIDATION_ERROR',
    });
    expect(r.stats.toolCallCount).toBe(1);
  });

  it('zod 3 failure: catchable, with .code VALIDATION_ERROR', async () => {
    const broker = makeBroker();
    const schema = z3.object({ q: z3.string().min(3) });
    broker.tool('search', { argsSchema: schema, handler: ({ q }) => q });
    const r = await broker.execute(
      "try { await callTool('search', {q: 'x'}) } catch (e) { return {m: e.message, c: e.code} }",
    );
    expect(r.value).toEqual({
      m: `Invalid arguments: ${schema.safeParse({ q: 'x' }).error.message}`,
      c: 'VALIDATION_ERROR',
    });
    expect((await broker.execute("return await callTool('search', {q: 'xyz'})")).value).toBe('xyz');
  });

  it('ToolContext has sessionId, callId, secrets, signal in that order', async () => {
    const broker = makeBroker();
    let ctx;
    broker.tool('ctx', {
      handler: (args, context) => {
        ctx = context;
        return Object.keys(context);
      },
    });
    const { events, onEvent } = collector();
    const r = await broker.execute("return await callTool('ctx', {})", { onEvent });
    expect(r.value).toEqual(['sessionId', 'callId', 'secrets', 'signal']);
    expect(ctx.sessionId).toMatch(SESSION_ID_RE);
    expect(ctx.sessionId).toBe(events[0].sessionId);
    expect(ctx.callId).toMatch(CALL_ID_RE);
    expect(ctx.callId).toBe(events.find((e) => e.type === 'tool_call').payload.callId);
    expect(ctx.secrets).toEqual({});
    expect(ctx.signal).toBeInstanceOf(AbortSignal);
    expect(ctx.signal.aborted).toBe(false);
  });

  it('only secrets listed in def.secrets reach ctx.secrets; a missing one is SECRET_ERROR', async () => {
    const broker = makeBroker();
    broker.tool('needs', { secrets: ['API_KEY'], handler: (args, ctx) => ctx.secrets });
    broker.tool('none', { handler: (args, ctx) => ctx.secrets });
    const missing = await broker.execute("return await callTool('needs', {})");
    expect(missing.error).toEqual({
      message: 'Missing required secret "API_KEY" for tool "needs"',
      name: 'Error',
      code: 'SECRET_ERROR',
    });
    const caught = await broker.execute("try { await callTool('needs', {}) } catch (e) { return e.code }");
    expect(caught.value).toBe('SECRET_ERROR');
    broker.secrets({ API_KEY: 'k-123', OTHER: 'hidden' });
    expect((await broker.execute("return await callTool('needs', {})")).value).toEqual({ API_KEY: 'k-123' });
    expect((await broker.execute("return await callTool('none', {})")).value).toEqual({});
  });

  it('a handler that throws with a code: the final code is that code', async () => {
    const broker = makeBroker();
    broker.tool('deny', {
      handler: () => {
        const e = new Error('Access denied');
        e.code = 'FORBIDDEN';
        throw e;
      },
    });
    const r = await broker.execute("return await callTool('deny', {})");
    expect(r).toMatchObject({
      success: false,
      error: { message: 'Access denied', name: 'Error', code: 'FORBIDDEN' },
      finalState: 'failed',
    });
  });

  it('a rejected tool inside try/catch: a real Error with message and code; the run continues', async () => {
    const broker = makeBroker();
    broker.tool('fail', {
      handler: async () => {
        throw Object.assign(new Error('tool exploded'), { code: 'BOOM' });
      },
    });
    broker.tool('plain', {
      handler: () => {
        throw new Error('plain failure');
      },
    });
    broker.tool('ok', { handler: () => 'after' });
    const r = await broker.execute(`
      const out = [];
      try { await callTool('fail', {}); } catch (e) {
        out.push({ m: e.message, c: e.code, n: e.name, isError: e instanceof Error });
      }
      try { await callTool('plain', {}); } catch (e) { out.push({ m: e.message, c: e.code }); }
      try { await callTool('nope', {}); } catch (e) { out.push({ m: e.message, c: e.code }); }
      out.push(await callTool('ok', {}));
      return out;
    `);
    expect(r.success).toBe(true);
    expect(r.value).toEqual([
      { m: 'tool exploded', c: 'BOOM', n: 'Error', isError: true },
      { m: 'plain failure', c: 'EXECUTION_ERROR' },
      { m: 'Unknown tool: nope', c: 'UNKNOWN_TOOL' },
      'after',
    ]);
    expect(r.stats.toolCallCount).toBe(4);
  });

  it('an unknown tool uncaught: UNKNOWN_TOOL "Unknown tool: x"', async () => {
    const r = await makeBroker().execute("return await callTool('x', {})");
    expect(r.error).toEqual({ message: 'Unknown tool: x', name: 'Error', code: 'UNKNOWN_TOOL' });
  });

  it('handler results: undefined, a Date, a nested object, a sync value', async () => {
    const broker = makeBroker();
    broker.tool('undef', { handler: async () => undefined });
    broker.tool('date', { handler: () => new Date('2024-05-06T07:08:09.010Z') });
    broker.tool('nested', {
      handler: () => ({
        user: { id: 1, tags: ['a', 'b'], profile: { address: { city: 'X', geo: [1.5, -2] } } },
        when: new Date(0),
        m: new Map([['k', { v: 1 }]]),
        s: new Set(['x']),
        big: 12345678901234567890n,
        skip: undefined,
        nul: null,
        err: new RangeError('bad range'),
      }),
    });
    broker.tool('sync', { handler: () => 42 });

    const u = await broker.execute("const v = await callTool('undef', {}); return {t: typeof v, isUndef: v === undefined}");
    expect(u.value).toEqual({ t: 'undefined', isUndef: true });
    const u2 = await broker.execute("return await callTool('undef', {})");
    expect(u2.success).toBe(true);
    expect('value' in u2).toBe(false);

    const d = await broker.execute("const v = await callTool('date', {}); return {v, t: typeof v}");
    expect(d.value).toEqual({ v: '2024-05-06T07:08:09.010Z', t: 'string' });

    const n = await broker.execute("const v = await callTool('nested', {}); return {v, city: v.user.profile.address.city}");
    expect(n.value).toEqual({
      v: {
        user: { id: 1, tags: ['a', 'b'], profile: { address: { city: 'X', geo: [1.5, -2] } } },
        when: '1970-01-01T00:00:00.000Z',
        m: { k: { v: 1 } },
        s: ['x'],
        big: '12345678901234567890',
        nul: null,
        err: { name: 'RangeError', message: 'bad range' },
      },
      city: 'X',
    });
    expect(Object.getPrototypeOf(n.value.v.user)).toBe(Object.prototype);

    expect((await broker.execute("return await callTool('sync', {})")).value).toBe(42);
  });

  it('parallel with a callback, and with an array of functions', async () => {
    const broker = makeBroker();
    let inFlight = 0;
    let maxInFlight = 0;
    broker.tool('double', {
      handler: async ({ n }) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 50));
        inFlight--;
        return n * 2;
      },
    });
    const a = await broker.execute("return await parallel([1, 2, 3, 4], (n, i) => callTool('double', {n: n + i * 0}))");
    expect(a.value).toEqual([2, 4, 6, 8]);
    expect(a.stats.toolCallCount).toBe(4);
    expect(maxInFlight).toBe(4);
    const b = await broker.execute(
      "return await parallel([() => callTool('double', {n: 1}), () => callTool('double', {n: 3})])",
    );
    expect(b.value).toEqual([2, 6]);
    const idx = await broker.execute("return await parallel(['a', 'b'], (x, i, all) => `${x}${i}${all.length}`)");
    expect(idx.value).toEqual(['a02', 'b12']);
    const tooMany = await broker.execute("return await parallel(Array.from({length: 101}, (_, i) => i), (n) => n)");
    expect(tooMany.error).toMatchObject({ message: 'parallel() is limited to 100 items', name: 'TypeError' });
    const notArray = await broker.execute('return await parallel(5, (n) => n)');
    expect(notArray.error.message).toBe('parallel() requires an array');
    const firstFailure = await broker.execute(
      "return await parallel([1, 2], (n) => n === 2 ? callTool('missing', {}) : callTool('double', {n}))",
    );
    expect(firstFailure.error).toMatchObject({ code: 'UNKNOWN_TOOL', message: 'Unknown tool: missing' });
  });
});
