// `execute()` as the seed documents use it (C2, C3, C28 in docs/compatibility.md): the returned promise is
// also async-iterable over the run's events, and the seed option keys `timeout`,
// `maxToolCalls`, `context` and `filter` work beside the original's `session` and `onEvent`.
import { describe, expect, it } from 'vitest';
import { createEventFilter, createTypeFilter } from '../index.mjs';
import { TOOL_CALL_EVENTS, brokersDisposedAfterEach, collector, gatedTool, waitFor } from './helpers/index.mjs';

const makeBroker = brokersDisposedAfterEach();

async function drain(iterable) {
  const events = [];
  for await (const event of iterable) events.push(event);
  return events;
}

const ONE_CALL = "console.log('hi'); return await callTool('add', {a: 1, b: 2});";
const ONE_CALL_TYPES = ['session_init', 'stdout', ...TOOL_CALL_EVENTS, 'final'];

function addBroker(config) {
  return makeBroker(config).tool('add', { handler: ({ a, b }) => a + b });
}

describe('execute() is a promise and an async iterable', () => {
  it('is a real Promise that resolves to the SessionFinalResult', async () => {
    const run = addBroker().execute(ONE_CALL);
    expect(run).toBeInstanceOf(Promise);
    expect(typeof run[Symbol.asyncIterator]).toBe('function');
    const result = await run;
    expect(result).toMatchObject({ success: true, value: 3, finalState: 'completed' });
  });

  it('for await yields every event from session_init to final, as onEvent sees them', async () => {
    const seen = collector();
    const run = addBroker().execute(ONE_CALL, { onEvent: seen.onEvent });
    const events = await drain(run);
    expect(events.map((e) => e.type)).toStrictEqual(ONE_CALL_TYPES);
    expect(events.map((e) => e.seq)).toStrictEqual([1, 2, 3, 4, 5, 6, 7]);
    // The same objects' content, and onEvent got nothing extra.
    expect(events).toStrictEqual(seen.events);
    expect(events.at(-1).payload.result).toBe(3);
  });

  it('an iteration begun after the run ended still yields every event, once', async () => {
    const run = addBroker().execute(ONE_CALL);
    expect((await run).value).toBe(3);
    expect((await drain(run)).map((e) => e.type)).toStrictEqual(ONE_CALL_TYPES);
    // A second iterator gets the whole stream again.
    expect((await drain(run)).map((e) => e.seq)).toStrictEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('an iteration begun mid-run gets the events before it and after it, once each', async () => {
    const broker = makeBroker();
    const gate = gatedTool(broker);
    const seen = collector();
    const run = broker.execute("console.log('a'); await callTool('wait', {}); console.log('b'); return 1;", {
      onEvent: seen.onEvent,
    });
    await waitFor(() => seen.types().includes('tool_progress'));
    const iterating = drain(run);
    gate.open();
    const events = await iterating;
    expect(events.map((e) => e.seq)).toStrictEqual(events.map((_, i) => i + 1));
    expect(events).toStrictEqual(seen.events);
    expect(events.at(-1).type).toBe('final');
  });

  it('breaking out of for await ends the iteration, not the run', async () => {
    const broker = makeBroker();
    const gate = gatedTool(broker);
    const run = broker.execute("await callTool('wait', {}); return 'done';");
    const seen = [];
    for await (const event of run) {
      seen.push(event.type);
      if (event.type === 'tool_call') break;
    }
    expect(seen).toStrictEqual(['session_init', 'tool_call']);
    gate.open();
    expect(await run).toMatchObject({ success: true, value: 'done' });
  });

  it('a failed script still ends its stream with final, and the iteration does not throw', async () => {
    const run = makeBroker().execute("throw new Error('boom')");
    const events = await drain(run);
    expect(events.map((e) => e.type)).toStrictEqual(['session_init', 'final']);
    expect(events[1].payload.error).toMatchObject({ code: 'EXECUTION_ERROR', message: 'boom' });
  });

  it('API misuse rejects the promise and throws from the iteration', async () => {
    const broker = makeBroker();
    await expect(drain(broker.execute(42))).rejects.toThrow('Script code must be a string, got number');
    await expect(broker.execute(42)).rejects.toThrow(TypeError);
    await broker.dispose();
    const run = broker.execute('return 1');
    await expect(drain(run)).rejects.toThrow('Broker is disposed');
    await expect(run).rejects.toThrow('Broker is disposed');
  });

  it('removes the session when the run ends, iterated or not', async () => {
    const broker = addBroker();
    await drain(broker.execute(ONE_CALL));
    await broker.execute(ONE_CALL);
    expect(broker.listSessions()).toStrictEqual([]);
  });
});

describe('seed keys on execute() options', () => {
  it('timeout is the script timeout (limits.toolTimeoutMs)', async () => {
    const r = await makeBroker().execute('while (true) {}', { timeout: 150 });
    expect(r.error).toStrictEqual({ message: 'Script execution timed out after 150ms', name: 'Error', code: 'TIMEOUT' });
  });

  it('maxToolCalls caps the run’s tool calls', async () => {
    const r = await addBroker().execute(
      "let s = 0; for (let i = 0; i < 5; i++) s = await callTool('add', {a: s, b: 1}); return s;",
      { maxToolCalls: 3 },
    );
    expect(r.error).toStrictEqual({
      message: 'Maximum tool call limit exceeded (3). This limit prevents runaway script execution.',
      name: 'Error',
      code: 'MAX_TOOL_CALLS_EXCEEDED',
    });
    expect(r.stats.toolCallCount).toBe(3);
  });

  it('the seed keys override the broker’s limits and keep the rest of them', async () => {
    const broker = addBroker({ limits: { maxToolCalls: 1, toolTimeoutMs: 150 } });
    const code = "await callTool('add', {a: 1, b: 1}); await callTool('add', {a: 1, b: 1}); while (true) {}";
    const r = await broker.execute(code, { maxToolCalls: 5 });
    expect(r.error.message).toBe('Script execution timed out after 150ms');
    expect(r.stats.toolCallCount).toBe(2);
  });

  it('with session.limits given, they are what the seed keys override (the original’s shallow merge)', async () => {
    const broker = addBroker({ limits: { toolTimeoutMs: 150 } });
    const code = "for (let i = 0; i < 3; i++) await callTool('add', {a: 1, b: 1}); return 'ok';";
    const r = await broker.execute(code, { session: { limits: { maxToolCalls: 2 } }, timeout: 5000 });
    expect(r.error.code).toBe('MAX_TOOL_CALLS_EXCEEDED');
    // The broker's 150 ms timeout was replaced by the session's limits, then by `timeout`.
    const slow = await broker.execute("const t = Date.now(); while (Date.now() - t < 300) {} return 'ok';", {
      session: { limits: {} },
      timeout: 5000,
    });
    expect(slow.value).toBe('ok');
  });

  it('context becomes read-only globals of the run, over the enclave globals', async () => {
    const broker = makeBroker({ enclave: { globals: { region: 'eu', tier: 'free' } } });
    const code = "'use strict'; let threw = false; try { userId = 'x'; } catch { threw = true; } return [userId, region, tier, threw];";
    const r = await broker.execute(code, { context: { userId: 'u1', tier: 'pro' } });
    expect(r.value).toStrictEqual(['u1', 'eu', 'pro', true]);
    // Only that run: the next one has no userId.
    expect((await broker.execute('return typeof userId')).value).toBe('undefined');
  });

  it('bad seed keys reject with a clear TypeError and create no session', async () => {
    const broker = makeBroker();
    await expect(broker.execute('return 1', { timeout: -1 })).rejects.toThrow('execute option "timeout" must be a non-negative number');
    await expect(broker.execute('return 1', { maxToolCalls: 'many' })).rejects.toThrow(
      'execute option "maxToolCalls" must be a non-negative number',
    );
    await expect(broker.execute('return 1', { context: [1] })).rejects.toThrow('execute option "context" must be an object');
    await expect(broker.execute('return 1', { context: { f: () => 1 } })).rejects.toThrow('Custom global "f" contains a function');
    await expect(broker.execute('return 1', { filter: 'stdout' })).rejects.toThrow('execute option "filter" must be');
    await expect(broker.execute('return 1', { filter: { types: 'stdout' } })).rejects.toThrow(
      'execute option "filter.types" must be an array of event types',
    );
    await expect(broker.execute('return 1', { filter: { typs: ['stdout'] } })).rejects.toThrow('execute option "filter" must be');
    expect(broker.stats().totalSessions).toBe(0);
  });
});

describe('the seed filter on execute()', () => {
  const CODE = "console.log('x'); await callTool('add', {a: 1, b: 2}); return 1;";

  it('{types} keeps those types plus session_init and final, for the iterator and onEvent alike', async () => {
    const seen = collector();
    const run = addBroker().execute(CODE, { filter: { types: ['stdout'] }, onEvent: seen.onEvent });
    const events = await drain(run);
    expect(events.map((e) => e.type)).toStrictEqual(['session_init', 'stdout', 'final']);
    // seq numbers are not rewritten.
    expect(events.map((e) => e.seq)).toStrictEqual([1, 2, 7]);
    expect(seen.events).toStrictEqual(events);
  });

  it('{blockedTypes} drops those types', async () => {
    const events = await drain(addBroker().execute(CODE, { filter: { blockedTypes: ['tool_progress', 'stdout'] } }));
    expect(events.map((e) => e.type)).toStrictEqual(['session_init', 'tool_call', 'tool_result_applied', 'final']);
  });

  it('takes an EventFilter or an EventFilter config', async () => {
    const broker = addBroker();
    const filter = createEventFilter({ config: createTypeFilter('include', ['tool_call']) });
    expect((await drain(broker.execute(CODE, { filter }))).map((e) => e.type)).toStrictEqual([
      'session_init',
      'tool_call',
      'final',
    ]);
    const config = {
      mode: 'include',
      rules: [{ content: { patterns: [{ type: 'prefix', field: 'payload.chunk', pattern: 'x' }] } }],
    };
    expect((await drain(broker.execute(CODE, { filter: config }))).map((e) => e.type)).toStrictEqual([
      'session_init',
      'stdout',
      'final',
    ]);
  });

  it('does not change the result the promise resolves to', async () => {
    const r = await addBroker().execute(CODE, { filter: { types: [] } });
    expect(r).toMatchObject({ success: true, value: 1, finalState: 'completed' });
  });
});

describe('seed keys on createSession()', () => {
  it('timeout and maxToolCalls at the top level set the session’s limits', async () => {
    const broker = addBroker();
    const timed = broker.createSession({ timeout: 120 });
    expect((await timed.execute('while (true) {}')).error.message).toBe('Script execution timed out after 120ms');
    const capped = broker.createSession({ maxToolCalls: 1 });
    const r = await capped.execute("await callTool('add', {a: 1, b: 1}); return await callTool('add', {a: 1, b: 1});");
    expect(r.error.code).toBe('MAX_TOOL_CALLS_EXCEEDED');
  });

  it('a bad value is a TypeError, before any session exists', () => {
    const broker = makeBroker();
    expect(() => broker.createSession({ timeout: 'soon' })).toThrow('createSession option "timeout" must be a non-negative number');
    expect(broker.stats().totalSessions).toBe(0);
  });
});
