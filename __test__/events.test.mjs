// The v2 event stream: exact sequence and payloads, envelope, IDs, and the listener
// contract of onEvent / getEvents.
import { describe, it, expect, afterEach } from 'vitest';
import { z } from 'zod';
import { createBroker } from '../index.mjs';
import { CALL_ID_RE, ENVELOPE_KEYS, ISO_RE, ONE_TOOL_CALL_RUN, RESULT_STATS_KEYS, SESSION_ID_RE, TOOL_CALL_EVENTS, collector, sleep } from './helpers/index.mjs';

const brokers = [];
function makeBroker(config) {
  const broker = createBroker(config);
  brokers.push(broker);
  broker.tool('add', {
    argsSchema: z.object({ a: z.number(), b: z.number() }),
    handler: ({ a, b }) => a + b,
  });
  broker.tool('slow', {
    handler: async ({ ms }) => {
      await sleep(ms);
      return 'done';
    },
  });
  broker.tool('fail', {
    handler: () => {
      throw new Error('tool exploded');
    },
  });
  return broker;
}

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.dispose()));
});

describe('event sequence for one console.log and one tool call', () => {
  const CODE = "console.log('hello', 42); const x = await callTool('add', {a: 1, b: 2}); return {x, s: 'ok'};";

  it('emits exactly session_init, stdout, tool_call, 2 × tool_progress, tool_result_applied, final', async () => {
    const broker = makeBroker();
    const { events, onEvent } = collector();
    const result = await broker.execute(CODE, { onEvent });

    expect(events.map((e) => e.type)).toEqual(['session_init', 'stdout', ...TOOL_CALL_EVENTS, 'final']);
    const sessionId = events[0].sessionId;
    expect(sessionId).toMatch(SESSION_ID_RE);

    for (const [i, event] of events.entries()) {
      expect(Object.keys(event)).toEqual(ENVELOPE_KEYS);
      expect(event.protocolVersion).toBe(2);
      expect(event.sessionId).toBe(sessionId);
      expect(event.seq).toBe(i + 1);
    }

    const [init, stdout, call, connecting, processing, applied, final] = events;
    expect(Object.keys(init.payload)).toEqual(['cancelUrl', 'expiresAt', 'encryption']);
    expect(init.payload.cancelUrl).toBe(`/sessions/${sessionId}/cancel`);
    expect(init.payload.expiresAt).toMatch(ISO_RE);
    expect(init.payload.encryption).toEqual({ enabled: false });
    // expiresAt = createdAt + sessionTtlMs (60000), and the run starts right after creation.
    const expires = Date.parse(init.payload.expiresAt);
    expect(expires - result.stats.startTime).toBeGreaterThanOrEqual(59000);
    expect(expires - result.stats.startTime).toBeLessThanOrEqual(60000);

    expect(stdout.payload).toEqual({ chunk: 'hello 42\n' });

    const callId = call.payload.callId;
    expect(callId).toMatch(CALL_ID_RE);
    expect(Object.keys(call.payload)).toEqual(['callId', 'toolName', 'args']);
    expect(call.payload).toEqual({ callId, toolName: 'add', args: { a: 1, b: 2 } });

    expect(Object.keys(connecting.payload)).toEqual(['callId', 'phase', 'elapsedMs']);
    expect(connecting.payload).toEqual({ callId, phase: 'connecting', elapsedMs: 0 });
    expect(Object.keys(processing.payload)).toEqual(['callId', 'phase', 'elapsedMs']);
    expect(processing.payload.callId).toBe(callId);
    expect(processing.payload.phase).toBe('processing');
    expect(processing.payload.elapsedMs).toBeGreaterThanOrEqual(0);

    expect(applied.payload).toEqual({ callId });

    expect(Object.keys(final.payload)).toEqual(['ok', 'result', 'stats']);
    expect(final.payload.ok).toBe(true);
    expect(final.payload.result).toEqual({ x: 3, s: 'ok' });
    expect(Object.keys(final.payload.stats)).toEqual(['durationMs', 'toolCallCount', 'stdoutBytes']);
    expect(final.payload.stats.toolCallCount).toBe(1);
    expect(final.payload.stats.stdoutBytes).toBe(Buffer.byteLength('hello 42\n'));
    expect(final.payload.stats.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('resolves to the SessionFinalResult in the original key order', async () => {
    const broker = makeBroker();
    const before = Date.now();
    const result = await broker.execute(CODE);
    const after = Date.now();
    expect(Object.keys(result)).toEqual(['success', 'value', 'stats', 'finalState']);
    expect(result.success).toBe(true);
    expect(result.value).toEqual({ x: 3, s: 'ok' });
    expect(Object.getPrototypeOf(result.value)).toBe(Object.prototype);
    expect(result.finalState).toBe('completed');
    expect(Object.keys(result.stats)).toEqual(RESULT_STATS_KEYS);
    expect(result.stats.toolCallCount).toBe(1);
    expect(result.stats.iterationCount).toBe(0);
    expect(result.stats.startTime).toBeGreaterThanOrEqual(before);
    expect(result.stats.endTime).toBeLessThanOrEqual(after);
    expect(result.stats.endTime - result.stats.startTime).toBe(result.stats.duration);
  });

  it('gives every session and every call a fresh s_/c_ + UUID v4 id', async () => {
    const broker = makeBroker();
    const sessionIds = new Set();
    const callIds = new Set();
    for (let i = 0; i < 3; i++) {
      const { events, onEvent } = collector();
      await broker.execute("await callTool('add', {a: 1, b: 1}); return await callTool('add', {a: 2, b: 2})", {
        onEvent,
      });
      sessionIds.add(events[0].sessionId);
      for (const e of events.filter((x) => x.type === 'tool_call')) callIds.add(e.payload.callId);
    }
    expect(sessionIds.size).toBe(3);
    expect(callIds.size).toBe(6);
    for (const id of sessionIds) expect(id).toMatch(SESSION_ID_RE);
    for (const id of callIds) expect(id).toMatch(CALL_ID_RE);
  });

  it('emits tool_result_applied for a failed call too, and no result key for undefined', async () => {
    const broker = makeBroker();
    const { events, onEvent } = collector();
    const result = await broker.execute("try { await callTool('fail', {}) } catch (e) {}", { onEvent });
    expect(result.success).toBe(true);
    expect('value' in result).toBe(false);
    expect(events.map((e) => e.type)).toEqual(ONE_TOOL_CALL_RUN);
    expect(Object.keys(events.at(-1).payload)).toEqual(['ok', 'stats']);
  });

  it('reports a failure in final as {ok:false, error:{code, message}, stats}', async () => {
    const broker = makeBroker();
    const { events, onEvent } = collector();
    const result = await broker.execute("await callTool('fail', {})", { onEvent });
    const final = events.at(-1);
    expect(final.type).toBe('final');
    expect(Object.keys(final.payload)).toEqual(['ok', 'error', 'stats']);
    expect(final.payload.error).toEqual({ code: 'EXECUTION_ERROR', message: 'tool exploded' });
    expect(Object.keys(result)).toEqual(['success', 'error', 'stats', 'finalState']);
    expect(result.error).toEqual({ message: 'tool exploded', name: 'Error', code: 'EXECUTION_ERROR' });
    expect(Object.keys(result.error)).toEqual(['message', 'name', 'code']);
    expect(result.finalState).toBe('failed');
  });

  it('interleaves the events of parallel calls, each call keeping its own order', async () => {
    const broker = makeBroker();
    const { events, onEvent } = collector();
    await broker.execute("return await parallel([1, 2, 3], (n) => callTool('add', {a: n, b: n}))", { onEvent });
    const calls = events.filter((e) => e.type === 'tool_call').map((e) => e.payload.callId);
    expect(calls).toHaveLength(3);
    for (const callId of calls) {
      const own = events.filter((e) => e.payload.callId === callId).map((e) => e.type);
      expect(own).toEqual(['tool_call', 'tool_progress', 'tool_progress', 'tool_result_applied']);
    }
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  });
});

describe('console output', () => {
  it('turns console.log into stdout and the levelled methods into log events', async () => {
    const broker = makeBroker();
    const { events, onEvent } = collector();
    const result = await broker.execute(
      "console.log('é', {a: 1}, [1, 2], null, undefined, 5); console.info('i'); console.warn('w'); console.error('e'); console.debug('d'); return 1",
      { onEvent },
    );
    expect(result.value).toBe(1);
    const output = events.filter((e) => e.type === 'stdout' || e.type === 'log');
    expect(output.map((e) => e.payload)).toEqual([
      { chunk: 'é {"a":1} [1,2] null undefined 5\n' },
      { level: 'info', message: 'i' },
      { level: 'warn', message: 'w' },
      { level: 'error', message: 'e' },
      { level: 'debug', message: 'd' },
    ]);
    const bytes = Buffer.byteLength('é {"a":1} [1,2] null undefined 5\n') + 4;
    expect(events.at(-1).payload.stats.stdoutBytes).toBe(bytes);
  });

  it('caps output at maxStdoutBytes', async () => {
    const broker = makeBroker();
    const { events, onEvent } = collector();
    const result = await broker.execute("for (let i = 0; i < 100; i++) console.log('0123456789'); return 'end'", {
      session: { limits: { maxStdoutBytes: 25 } },
      onEvent,
    });
    expect(result.value).toBe('end');
    const chunks = events.filter((e) => e.type === 'stdout').map((e) => e.payload.chunk);
    expect(chunks.join('')).toBe('0123456789\n0123456789\n012');
    expect(events.at(-1).payload.stats.stdoutBytes).toBe(25);
  });
});

describe('onEvent listeners', () => {
  it('delivers every event once, in seq order, before execute resolves', async () => {
    const broker = makeBroker();
    const session = broker.createSession();
    const seen = [];
    let resolved = false;
    session.onEvent((e) => {
      expect(resolved).toBe(false);
      seen.push(e);
    });
    const code = `
      for (let i = 0; i < 20; i++) console.log('line ' + i);
      const r = await parallel(Array.from({length: 20}, (_, i) => i), (n) => callTool('add', {a: n, b: 1}));
      console.info('done');
      return r.length;
    `;
    const result = await session.execute(code).then((r) => {
      resolved = true;
      return r;
    });
    expect(result.value).toBe(20);
    expect(seen.map((e) => e.seq)).toEqual(seen.map((_, i) => i + 1));
    expect(seen.at(-1).type).toBe('final');
    // getEvents is the same stream.
    expect(session.getEvents()).toEqual(seen);
    expect(session.seq).toBe(seen.length);
  });

  it('getEvents equals the live stream with heartbeats in it', async () => {
    const broker = makeBroker();
    const session = broker.createSession({ limits: { heartbeatIntervalMs: 20 } });
    const { events, onEvent } = collector();
    session.onEvent(onEvent);
    await session.execute("return await callTool('slow', {ms: 90})");
    expect(events.filter((e) => e.type === 'heartbeat').length).toBeGreaterThanOrEqual(2);
    expect(session.getEvents()).toEqual(events);
  });

  it('broker.execute onEvent sees the whole stream before the promise resolves', async () => {
    const broker = makeBroker();
    const seen = [];
    const result = await broker.execute("console.log('a'); return await callTool('add', {a: 2, b: 3})", {
      onEvent: (e) => seen.push(e.type),
    });
    expect(result.value).toBe(5);
    expect(seen.at(-1)).toBe('final');
    expect(seen).toEqual(['session_init', 'stdout', 'tool_call', 'tool_progress', 'tool_progress', 'tool_result_applied', 'final']);
  });

  it('swallows listener exceptions; other listeners and the run are unaffected', async () => {
    const broker = makeBroker();
    const session = broker.createSession();
    let thrown = 0;
    session.onEvent(() => {
      thrown++;
      throw new Error('bad listener');
    });
    const { events, onEvent } = collector();
    session.onEvent(onEvent);
    const result = await session.execute("return await callTool('add', {a: 1, b: 2})");
    expect(result.value).toBe(3);
    expect(thrown).toBe(events.length);
    expect(events.map((e) => e.type)).toEqual(ONE_TOOL_CALL_RUN);

    const viaExecute = [];
    const r2 = await broker.execute('return 7', {
      onEvent: (e) => {
        viaExecute.push(e.type);
        throw new Error('also bad');
      },
    });
    expect(r2.value).toBe(7);
    expect(viaExecute).toEqual(['session_init', 'final']);
  });

  it('returns an unsubscribe function (idempotent); a listener can unsubscribe itself', async () => {
    const broker = makeBroker();
    const session = broker.createSession();
    const all = [];
    const early = [];
    session.onEvent((e) => all.push(e.seq));
    const unsubscribe = session.onEvent((e) => {
      early.push(e.seq);
      if (e.type === 'tool_call') unsubscribe();
    });
    expect(typeof unsubscribe).toBe('function');
    const dropped = [];
    const off = session.onEvent((e) => dropped.push(e));
    off();
    off();
    await session.execute("await callTool('add', {a: 1, b: 2}); return await callTool('add', {a: 1, b: 2})");
    expect(all).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(early).toEqual([1, 2]);
    expect(dropped).toEqual([]);
  });

  it('keeps one order for all listeners when a listener emits or cancels', async () => {
    const broker = makeBroker();
    const session = broker.createSession();
    const first = [];
    const second = [];
    session.onEvent((e) => {
      first.push(e.seq);
      if (e.type === 'session_init') session.emitPartialResult(['from-listener'], 1);
    });
    session.onEvent((e) => second.push(e.seq));
    await session.execute("return await callTool('add', {a: 1, b: 2})");
    // The script runs on its own thread, so where the listener's partial_result lands
    // relative to tool_call may vary; every listener sees the same order either way.
    expect(first).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(second).toEqual(first);
    expect(session.getEvents().filter((e) => e.type === 'partial_result')).toHaveLength(1);

    const cancelling = broker.createSession();
    const a = [];
    const b = [];
    cancelling.onEvent((e) => {
      a.push(e.type);
      if (e.type === 'tool_call') cancelling.cancel();
    });
    cancelling.onEvent((e) => b.push(e.type));
    const r = await cancelling.execute("return await callTool('slow', {ms: 200})");
    expect(r.error.code).toBe('SESSION_CANCELLED');
    expect(b).toEqual(a);
    expect(a).toEqual(cancelling.getEvents().map((e) => e.type));
  });

  it('does not replay history to a late subscriber', async () => {
    const broker = makeBroker();
    const session = broker.createSession();
    await session.execute('return 1');
    const { events, onEvent } = collector();
    session.onEvent(onEvent);
    expect(events).toEqual([]);
    expect(session.getEvents().map((e) => e.type)).toEqual(['session_init', 'final']);
  });

  it('getEvents returns a copy', async () => {
    const broker = makeBroker();
    const session = broker.createSession();
    await session.execute('return 1');
    const first = session.getEvents();
    first.pop();
    first[0].type = 'changed';
    expect(session.getEvents().map((e) => e.type)).toEqual(['session_init', 'final']);
  });

  it('rejects a non-function listener with a TypeError', () => {
    const broker = makeBroker();
    const session = broker.createSession();
    expect(() => session.onEvent('nope')).toThrow(TypeError);
  });
});
