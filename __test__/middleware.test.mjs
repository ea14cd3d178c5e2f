// The seed API's broker `middleware` (S001, C27 in docs/compatibility.md): functions around every tool
// handler, after argument validation.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBroker, createToolRegistry } from '../index.mjs';
import { SESSION_ID_RE, brokersDisposedAfterEach } from './helpers/index.mjs';

const makeBroker = brokersDisposedAfterEach();
const CALL = "return await callTool('add', {a: 1, b: 2});";

function adder(broker, calls = []) {
  return broker.tool('add', {
    argsSchema: z.object({ a: z.number(), b: z.number(), scale: z.number().default(1) }),
    handler: ({ a, b, scale }) => {
      calls.push([a, b, scale]);
      return (a + b) * scale;
    },
  });
}

describe('middleware', () => {
  it('runs onion-style around the handler, in the order given', async () => {
    const log = [];
    const layer = (label) => async (call, next) => {
      log.push(`${label} in`);
      const value = await next(call);
      log.push(`${label} out ${value}`);
      return value;
    };
    const broker = adder(makeBroker({ middleware: [layer('outer'), layer('inner')] }));
    expect((await broker.execute(CALL)).value).toBe(3);
    expect(log).toStrictEqual(['outer in', 'inner in', 'inner out 3', 'outer out 3']);
  });

  it('sees validated arguments and the call context, and may change args and the result', async () => {
    const seen = [];
    const calls = [];
    const broker = adder(
      makeBroker({
        middleware: [
          async (call, next) => {
            seen.push({ name: call.name, args: call.args, sessionId: call.context.sessionId, aborted: call.context.signal.aborted });
            return `result: ${await next({ ...call, args: { ...call.args, scale: 10 } })}`;
          },
        ],
      }),
      calls,
    );
    expect((await broker.execute(CALL)).value).toBe('result: 30');
    // zod's parsed output (the default filled in), not the script's raw object.
    expect(seen).toStrictEqual([{ name: 'add', args: { a: 1, b: 2, scale: 1 }, sessionId: expect.stringMatching(SESSION_ID_RE), aborted: false }]);
    expect(calls).toStrictEqual([[1, 2, 10]]);
  });

  it('a throwing middleware fails the call as a throwing handler would, and the handler does not run', async () => {
    const calls = [];
    const broker = adder(
      makeBroker({
        middleware: [
          async (call, next) => {
            if (call.args.a === 0) throw Object.assign(new Error('Invalid arguments'), { code: 'BAD_ARGS' });
            if (call.args.a === 9) throw new Error('plain');
            return next(call);
          },
        ],
      }),
      calls,
    );
    const run = (a) => broker.execute(`return await callTool('add', {a: ${a}, b: 2});`);
    expect((await run(0)).error).toStrictEqual({ message: 'Invalid arguments', name: 'Error', code: 'BAD_ARGS' });
    expect((await run(9)).error).toStrictEqual({ message: 'plain', name: 'Error', code: 'EXECUTION_ERROR' });
    const caught = await broker.execute("try { await callTool('add', {a: 0, b: 1}); } catch (e) { return e.code; }");
    expect(caught.value).toBe('BAD_ARGS');
    expect(calls).toStrictEqual([]);
  });

  it('may answer without calling next, and calling next twice is an error', async () => {
    const calls = [];
    const cached = adder(makeBroker({ middleware: [async () => 'from cache'] }), calls);
    expect((await cached.execute(CALL)).value).toBe('from cache');
    expect(calls).toStrictEqual([]);
    const twice = adder(makeBroker({ middleware: [async (call, next) => (await next(call)) + (await next(call))] }));
    expect((await twice.execute(CALL)).error.message).toBe('next() called more than once by a middleware');
  });

  it('does not run for arguments that fail validation', async () => {
    const log = [];
    const broker = adder(makeBroker({ middleware: [async (call, next) => log.push(call.name) && next(call)] }));
    const r = await broker.execute("return await callTool('add', {a: 'one', b: 2});");
    expect(r.error.code).toBe('VALIDATION_ERROR');
    expect(log).toStrictEqual([]);
  });

  it('wraps tools of a ToolRegistry given as `tools`, and the toolHandler fallback', async () => {
    const registry = createToolRegistry();
    registry.register({ name: 'hello', handler: () => 'hi' });
    const names = [];
    const broker = makeBroker({
      tools: registry,
      toolHandler: (args, ctx) => `fallback for ${ctx.toolName}`,
      middleware: [
        async (call, next) => {
          names.push(call.name);
          return next(call);
        },
      ],
    });
    const r = await broker.execute("return [await callTool('hello', {}), await callTool('other', {})];");
    expect(r.value).toStrictEqual(['hi', 'fallback for other']);
    expect(names).toStrictEqual(['hello', 'other']);
    // The registry itself is unchanged: used directly, it runs no middleware.
    expect(await registry.execute('hello', {}, {})).toMatchObject({ success: true, value: 'hi' });
    expect(names).toHaveLength(2);
  });

  it('must be an array of functions', () => {
    expect(() => createBroker({ middleware: () => {} })).toThrow(new TypeError('middleware must be an array of functions'));
    expect(() => createBroker({ middleware: [() => {}, 'log'] })).toThrow(TypeError);
    expect(() => makeBroker({ middleware: [] })).not.toThrow();
  });
});
