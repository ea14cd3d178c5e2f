// BrokerSession / createBrokerSession (1.G in docs/compatibility.md): getters, lifecycle errors, cancel,
// heartbeats, deadline, emitToolProgress / emitPartialResult, stats, dispose.
import { describe, it, expect, afterEach } from 'vitest';
import { BrokerSession, ToolRegistry, createBroker, createBrokerSession, createToolRegistry } from '../index.mjs';
import { ISO_RE, ONE_TOOL_CALL_RUN, RESULT_STATS_KEYS, SESSION_ID_RE, collector, hangingTool, hostCounts, settleWithin, sleep, waitFor } from './helpers/index.mjs';

function makeRegistry() {
  const registry = createToolRegistry();
  registry.register({ name: 'add', handler: ({ a, b }) => a + b });
  registry.register({
    name: 'slow',
    handler: async ({ ms }) => {
      await sleep(ms);
      return 'done';
    },
  });
  return registry;
}

const sessions = [];
function makeSession(config, registry = makeRegistry()) {
  const session = config === undefined ? createBrokerSession(registry) : createBrokerSession(registry, config);
  sessions.push(session);
  return session;
}

afterEach(() => {
  for (const s of sessions.splice(0)) s.dispose();
});

describe('construction and getters', () => {
  it('createBrokerSession(registry, config?) and new BrokerSession(registry, config?)', () => {
    const registry = new ToolRegistry();
    const a = createBrokerSession(registry);
    const b = new BrokerSession(registry, { sessionId: 'mine' });
    sessions.push(a, b);
    expect(a).toBeInstanceOf(BrokerSession);
    expect(a.sessionId).toMatch(SESSION_ID_RE);
    expect(b.sessionId).toBe('mine');
    expect(a.sessionId).not.toBe(createBrokerSession(registry).sessionId);
  });

  it('also accepts the docs object form {toolRegistry, sessionId, limits}', async () => {
    const session = new BrokerSession({ toolRegistry: makeRegistry(), sessionId: 'obj', limits: { maxToolCalls: 1 } });
    sessions.push(session);
    expect(session.sessionId).toBe('obj');
    const r = await session.execute("await callTool('add', {a: 1, b: 1}); return await callTool('add', {a: 1, b: 1})");
    expect(r.error.code).toBe('MAX_TOOL_CALLS_EXCEEDED');
  });

  it('requires a ToolRegistry', () => {
    expect(() => createBrokerSession(null)).toThrow(new TypeError('BrokerSession needs a ToolRegistry'));
    expect(() => new BrokerSession({})).toThrow(TypeError);
  });

  it('sessionId, createdAt, expiresAt = createdAt + sessionTtlMs, state, seq', () => {
    const before = Date.now();
    const session = makeSession();
    expect(session.createdAt).toBeGreaterThanOrEqual(before);
    expect(session.createdAt).toBeLessThanOrEqual(Date.now());
    expect(session.expiresAt).toBe(session.createdAt + 60000);
    expect(session.state).toBe('starting');
    expect(session.seq).toBe(0);
    const custom = makeSession({ limits: { sessionTtlMs: 1234 } });
    expect(custom.expiresAt).toBe(custom.createdAt + 1234);
    expect(Object.keys(session)).toEqual(['sessionId', 'createdAt', 'expiresAt']);
  });

  it('session_init.expiresAt is the ISO form of expiresAt', async () => {
    const session = makeSession({ limits: { sessionTtlMs: 4321 } });
    await session.execute('return 1');
    const init = session.getEvents()[0];
    expect(init.type).toBe('session_init');
    expect(init.payload.expiresAt).toBe(new Date(session.expiresAt).toISOString());
    expect(init.payload.cancelUrl).toBe(`/sessions/${session.sessionId}/cancel`);
  });

  it('isExpired / isTerminal', async () => {
    const session = makeSession({ limits: { sessionTtlMs: 60 } });
    expect(session.isExpired()).toBe(false);
    expect(session.isTerminal()).toBe(false);
    await sleep(70);
    expect(session.isExpired()).toBe(true);
    // Expiry only sets expiresAt; it does not stop a run (Q5 in docs/compatibility.md).
    const r = await session.execute('return 1');
    expect(r.value).toBe(1);
    expect(session.isTerminal()).toBe(true);
  });
});

describe('execute / wait lifecycle', () => {
  it('moves starting → running → completed; seq is the last seq', async () => {
    const session = makeSession();
    const states = [];
    session.onEvent((e) => states.push([e.type, session.state]));
    const pending = session.execute("return await callTool('slow', {ms: 30})");
    expect(session.state).toBe('running');
    const result = await pending;
    expect(result.value).toBe('done');
    expect(session.state).toBe('completed');
    expect(states[1]).toEqual(['tool_call', 'running']);
    expect(session.seq).toBe(6);
  });

  it('failed state for a failing script', async () => {
    const session = makeSession();
    const r = await session.execute("throw new Error('x')");
    expect(r.finalState).toBe('failed');
    expect(session.state).toBe('failed');
  });

  it('"Session is already executing" for a second execute', async () => {
    const session = makeSession();
    const first = session.execute('return 1');
    await expect(session.execute('return 2')).rejects.toThrow(new Error('Session is already executing'));
    expect((await first).value).toBe(1);
    await expect(session.execute('return 3')).rejects.toThrow('Session is already executing');
  });

  it('"Session has not started execution" for wait() before execute; afterwards the same result', async () => {
    const session = makeSession();
    await expect(session.wait()).rejects.toThrow(new Error('Session has not started execution'));
    const pending = session.execute('return 5');
    const waited = session.wait();
    const [a, b] = await Promise.all([pending, waited]);
    expect(b).toEqual(a);
    expect(await session.wait()).toEqual(a);
  });

  it('execute(nonString) rejects with a TypeError and leaves the session usable', async () => {
    const session = makeSession();
    for (const code of [undefined, null, 1, {}, []]) {
      await expect(session.execute(code)).rejects.toThrow(TypeError);
    }
    expect(session.state).toBe('starting');
    expect(session.getEvents()).toEqual([]);
    expect((await session.execute('return "ok"')).value).toBe('ok');
  });
});

describe('cancel', () => {
  it('before execute: error + final with the reason, then execute throws (Q8)', async () => {
    const session = makeSession();
    const { events, onEvent } = collector();
    session.onEvent(onEvent);
    await session.cancel('stop please');
    expect(session.state).toBe('cancelled');
    expect(events.map((e) => [e.seq, e.type])).toEqual([
      [1, 'error'],
      [2, 'final'],
    ]);
    expect(events[0].payload).toEqual({ code: 'SESSION_CANCELLED', message: 'stop please', recoverable: false });
    expect(events[1].payload).toEqual({
      ok: false,
      error: { code: 'SESSION_CANCELLED', message: 'stop please' },
      stats: { durationMs: events[1].payload.stats.durationMs, toolCallCount: 0, stdoutBytes: 0 },
    });
    const waited = await session.wait();
    expect(waited).toMatchObject({
      success: false,
      error: { message: 'stop please', name: 'Error', code: 'SESSION_CANCELLED' },
      finalState: 'cancelled',
    });
    expect(Object.keys(waited.stats)).toEqual(RESULT_STATS_KEYS);
    await expect(session.execute('return 1')).rejects.toThrow('Session is already executing');
  });

  it('before execute without a reason: "Session was cancelled"', async () => {
    const session = makeSession();
    await session.cancel();
    expect(session.getEvents()[0].payload.message).toBe('Session was cancelled');
    expect((await session.wait()).error.message).toBe('Session was cancelled');
  });

  it('while a tool call is pending: aborts the signal, stops, reports "Session was cancelled" (Q20)', async () => {
    const registry = makeRegistry();
    const hang = hangingTool();
    registry.register({ name: 'hang', ...hang.def });
    const session = makeSession(undefined, registry);
    const { events, onEvent } = collector();
    session.onEvent(onEvent);
    const pending = session.execute("return await callTool('hang', {})");
    await waitFor(() => hang.calls.length === 1);
    expect(hang.calls[0].aborted).toBe(false);
    await session.cancel('my reason');
    expect(session.state).toBe('cancelled');
    const result = await settleWithin(pending, 2000);
    expect(result).toMatchObject({
      success: false,
      error: { message: 'Session was cancelled', name: 'Error', code: 'SESSION_CANCELLED' },
      finalState: 'cancelled',
    });
    expect(result.stats.toolCallCount).toBe(1);
    expect(hang.calls[0].aborted).toBe(true);
    expect(events.map((e) => e.type)).toEqual(ONE_TOOL_CALL_RUN);
    expect(events.at(-1).payload.error).toEqual({ code: 'SESSION_CANCELLED', message: 'Session was cancelled' });
    // Terminal: a second cancel is a no-op.
    await session.cancel('again');
    expect(session.seq).toBe(6);
    await waitFor(() => hostCounts().toolSignals === 0);
  });

  it('abandons every pending parallel call: one tool_result_applied and one abort each', async () => {
    const registry = makeRegistry();
    const hang = hangingTool();
    registry.register({ name: 'hang', ...hang.def });
    const session = makeSession(undefined, registry);
    const pending = session.execute("return await parallel([1, 2, 3], () => callTool('hang', {}))");
    await waitFor(() => hang.calls.length === 3);
    await session.cancel();
    const result = await settleWithin(pending, 2000);
    expect(result.error.code).toBe('SESSION_CANCELLED');
    const types = session.getEvents().map((e) => e.type);
    expect(types.filter((t) => t === 'tool_call')).toHaveLength(3);
    expect(types.filter((t) => t === 'tool_result_applied')).toHaveLength(3);
    expect(types.at(-1)).toBe('final');
    expect(hang.calls.every((c) => c.aborted)).toBe(true);
    await waitFor(() => hostCounts().toolSignals === 0);
  });

  it('stops a script spinning in a synchronous loop', async () => {
    const session = makeSession();
    const pending = session.execute('let i = 0; while (true) { i++; }');
    await sleep(30);
    const started = Date.now();
    await session.cancel();
    const result = await settleWithin(pending, 2000);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(result).toMatchObject({ error: { code: 'SESSION_CANCELLED', message: 'Session was cancelled' } });
  });
});

describe('heartbeats', () => {
  it('emits heartbeat {ts} every limits.heartbeatIntervalMs while running', async () => {
    // The tool answers only once two heartbeats have arrived while it waited, so the
    // order below is a recorded fact, however late a loaded machine runs the timers.
    const { events, onEvent } = collector();
    const beatsSeen = () => events.filter((e) => e.type === 'heartbeat').length;
    const registry = makeRegistry();
    registry.register({
      name: 'untilBeats',
      handler: async () => {
        const before = beatsSeen();
        await waitFor(() => beatsSeen() >= before + 2, 20000, 'two heartbeats during the tool call');
        return 'done';
      },
    });
    const session = makeSession({ limits: { heartbeatIntervalMs: 40 } }, registry);
    session.onEvent(onEvent);
    const started = Date.now();
    const r = await session.execute("return await callTool('untilBeats', {})");
    const elapsed = Date.now() - started;
    expect(r.value).toBe('done');
    const beats = events.filter((e) => e.type === 'heartbeat');
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(beats.length).toBeLessThanOrEqual(Math.ceil(elapsed / 40));
    for (const beat of beats) {
      expect(Object.keys(beat.payload)).toEqual(['ts']);
      expect(beat.payload.ts).toMatch(ISO_RE);
    }
    const types = events.map((e) => e.type);
    const duringCall = types.slice(types.lastIndexOf('tool_progress'), types.indexOf('tool_result_applied'));
    expect(duringCall.filter((t) => t === 'heartbeat').length).toBeGreaterThanOrEqual(2);
    // While running (a loaded machine may fit one in after the tool's result), never after final.
    expect(types.lastIndexOf('heartbeat')).toBeLessThan(types.indexOf('final'));
    // None after the end.
    const seq = session.seq;
    await sleep(100);
    expect(session.seq).toBe(seq);
  });

  it('ignores the top-level heartbeatIntervalMs (Q2) and 0 disables heartbeats', async () => {
    for (const config of [{ heartbeatIntervalMs: 20 }, { limits: { heartbeatIntervalMs: 0 } }]) {
      const session = makeSession(config);
      await session.execute("return await callTool('slow', {ms: 80})");
      expect(session.getEvents().filter((e) => e.type === 'heartbeat')).toEqual([]);
    }
  });
});

describe('deadline', () => {
  it('emits deadline_exceeded then final DEADLINE_EXCEEDED; state cancelled, finalState failed (Q9)', async () => {
    const registry = makeRegistry();
    const hang = hangingTool();
    registry.register({ name: 'hang', ...hang.def });
    const session = makeSession({ limits: { deadlineMs: 100 } }, registry);
    const r = await settleWithin(session.execute("return await callTool('hang', {})"), 3000);
    expect(r).toMatchObject({
      success: false,
      error: { message: 'Deadline exceeded', name: 'Error', code: 'DEADLINE_EXCEEDED' },
      finalState: 'failed',
    });
    expect(session.state).toBe('cancelled');
    const events = session.getEvents();
    expect(events.slice(-2).map((e) => e.type)).toEqual(['deadline_exceeded', 'final']);
    const payload = events.at(-2).payload;
    expect(Object.keys(payload)).toEqual(['elapsedMs', 'budgetMs']);
    expect(payload.budgetMs).toBe(100);
    expect(payload.elapsedMs).toBeGreaterThanOrEqual(100);
    expect(hang.calls[0].aborted).toBe(true);
  });

  it('already past at execute: "Deadline exceeded before execution"', async () => {
    const session = makeSession({ limits: { deadlineMs: 5 } });
    await sleep(15);
    const r = await session.execute('return 1');
    expect(r.error).toEqual({ message: 'Deadline exceeded before execution', name: 'Error', code: 'DEADLINE_EXCEEDED' });
    expect(r.finalState).toBe('failed');
    expect(session.getEvents().map((e) => e.type)).toEqual(['deadline_exceeded', 'final']);
  });
});

describe('emitToolProgress / emitPartialResult / getPartialErrors', () => {
  it('emitToolProgress emits tool_progress with optional byte counts', () => {
    const session = makeSession();
    const { events, onEvent } = collector();
    session.onEvent(onEvent);
    session.emitToolProgress('c_1', 'sending', 5, 10, 100);
    session.emitToolProgress('c_1', 'receiving', 7);
    expect(events.map((e) => [e.seq, e.type, e.payload])).toEqual([
      [1, 'tool_progress', { callId: 'c_1', phase: 'sending', elapsedMs: 5, bytesReceived: 10, totalBytes: 100 }],
      [2, 'tool_progress', { callId: 'c_1', phase: 'receiving', elapsedMs: 7 }],
    ]);
    expect(Object.keys(events[0].payload)).toEqual(['callId', 'phase', 'elapsedMs', 'bytesReceived', 'totalBytes']);
    expect(() => session.emitToolProgress('c_1', 'nope', 0)).toThrow(TypeError);
  });

  it('emitPartialResult emits partial_result; errors also land in final.errors', async () => {
    const session = makeSession();
    const { events, onEvent } = collector();
    session.onEvent(onEvent);
    session.emitPartialResult(['a', 'b'], { x: 1 });
    const error = { code: 'UPSTREAM', message: 'bad', details: [{ type: 'retry_info', retryDelayMs: 5 }] };
    session.emitPartialResult(['c'], undefined, error, false);
    expect(events.map((e) => e.payload)).toEqual([
      { path: ['a', 'b'], data: { x: 1 }, hasNext: true },
      { path: ['c'], error, hasNext: false },
    ]);
    expect(Object.keys(events[0].payload)).toEqual(['path', 'data', 'hasNext']);
    expect(session.getPartialErrors()).toEqual([error]);
    const r = await session.execute('return 1');
    expect(r.value).toBe(1);
    const final = events.at(-1);
    expect(Object.keys(final.payload)).toEqual(['ok', 'result', 'errors', 'stats']);
    expect(final.payload.errors).toEqual([error]);
    expect(() => session.emitPartialResult('not-an-array')).toThrow(TypeError);
  });

  it('final has no errors key without partial errors; emits from a running handler stay in order', async () => {
    const broker = createBroker();
    broker.tool('progress', {
      handler: (args, ctx) => {
        const s = broker.getSession(ctx.sessionId);
        s.emitToolProgress(ctx.callId, 'receiving', 1, 5, 10);
        s.emitPartialResult(['p'], { n: 1 });
        s.emitPartialResult(['q'], undefined, { code: 'E', message: 'partial failure' });
        return 'ok';
      },
    });
    try {
      const session = broker.createSession();
      const { events, onEvent } = collector();
      session.onEvent(onEvent);
      await session.execute("return await callTool('progress', {})");
      expect(events.map((e) => e.type)).toEqual([
        'session_init',
        'tool_call',
        'tool_progress',
        'tool_progress',
        'tool_progress',
        'partial_result',
        'partial_result',
        'tool_result_applied',
        'final',
      ]);
      expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(events.at(-1).payload.errors).toEqual([{ code: 'E', message: 'partial failure' }]);
      expect(session.getPartialErrors()).toEqual([{ code: 'E', message: 'partial failure' }]);

      const plain = broker.createSession();
      await plain.execute('return 1');
      expect(Object.keys(plain.getEvents().at(-1).payload)).toEqual(['ok', 'result', 'stats']);
      expect(plain.getPartialErrors()).toEqual([]);
    } finally {
      await broker.dispose();
    }
  });

  it('emits nothing once the session is terminal', async () => {
    const session = makeSession();
    await session.execute('return 1');
    const seq = session.seq;
    session.emitToolProgress('c_1', 'processing', 1);
    session.emitPartialResult(['x'], 1);
    expect(session.seq).toBe(seq);
  });

  it('session.events exposes the emitter surface (emitStdout, emitLog, ...)', () => {
    const session = makeSession();
    const { events, onEvent } = collector();
    session.events.onEvent(onEvent);
    session.events.emitStdout('abc');
    session.events.emitLog('info', 'msg', { d: 1 });
    expect(events.map((e) => [e.type, e.payload])).toEqual([
      ['stdout', { chunk: 'abc' }],
      ['log', { level: 'info', message: 'msg', data: { d: 1 } }],
    ]);
    expect(session.events.seq).toBe(2);
    expect(session.events.getEvents()).toEqual(events);
  });
});

describe('getStats and dispose', () => {
  it('getStats: duration from creation keeps growing after completion (Q11); endTime 0 until terminal', async () => {
    const session = makeSession();
    const early = session.getStats();
    expect(Object.keys(early)).toEqual(RESULT_STATS_KEYS);
    expect(early).toMatchObject({ toolCallCount: 0, iterationCount: 0, startTime: session.createdAt, endTime: 0 });
    await session.execute("return await callTool('add', {a: 1, b: 1})");
    const done = session.getStats();
    expect(done.toolCallCount).toBe(1);
    expect(done.endTime).toBeGreaterThanOrEqual(session.createdAt);
    await sleep(20);
    expect(session.getStats().duration).toBeGreaterThanOrEqual(done.duration + 15);
  });

  it('dispose of a running session ends it as cancelled and its execute resolves', async () => {
    const registry = makeRegistry();
    const hang = hangingTool();
    registry.register({ name: 'hang', ...hang.def });
    const session = makeSession(undefined, registry);
    const pending = session.execute("return await callTool('hang', {})");
    await waitFor(() => hang.calls.length === 1);
    session.dispose();
    const r = await settleWithin(pending, 2000);
    expect(r).toMatchObject({ success: false, error: { code: 'SESSION_CANCELLED' }, finalState: 'cancelled' });
    expect(session.state).toBe('cancelled');
    expect(hang.calls[0].aborted).toBe(true);
  });

  it('dispose of an idle session emits nothing and can be repeated', () => {
    const session = makeSession();
    session.dispose();
    session.dispose();
    expect(session.getEvents()).toEqual([]);
  });
});
