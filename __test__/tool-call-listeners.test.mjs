// The seed's embedder-driven tool loop (S001 in docs/compatibility.md Quick Start, lib/tool-call-listeners.js):
// `session.on('tool_call', cb)` hands the script's calls to the embedder, which answers with
// `session.send({type: 'tool_result', id, data | error})`, usually after running the call with
// `broker.executeToolCall(sessionId, call)`. Without a listener the broker runs tools itself.
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Broker, BrokerSession, createSession } from '../index.mjs';
import { NO_LEAKS, TOOL_CALL_EVENTS, brokersDisposedAfterEach, collector, hostCounts, waitFor } from './helpers/index.mjs';

const makeBroker = brokersDisposedAfterEach();

afterEach(async () => {
  await waitFor(() => hostCounts().toolSignals === 0, 5000, 'tool signals released');
});

// The Quick Start's listener: every call runs through the broker and is answered with its value.
function answerThroughBroker(broker, session, seen = []) {
  session.on('tool_call', async (call) => {
    seen.push(call);
    const result = await broker.executeToolCall(session.id, call);
    session.send({ type: 'tool_result', id: call.id, data: result });
  });
  return seen;
}

function neverCalled() {
  throw new Error('never called');
}

function usersBroker(config = {}) {
  const broker = makeBroker(config);
  broker.tool('users:get', { argsSchema: z.object({ id: z.number() }), handler: ({ id }) => ({ id, name: 'Alice' }) });
  return broker;
}

describe("session.on('tool_call') and send()", () => {
  it('delivers {id, name, args}, and the answer resolves callTool, with the same events as the automatic loop', async () => {
    const broker = usersBroker();
    const session = createSession(broker, { allowedTools: ['users:*'] });
    const seen = answerThroughBroker(broker, session);
    const events = collector();
    session.onEvent(events.onEvent);
    const result = await session.execute("return await callTool('users:get', { id: 7 })");
    expect(result).toMatchObject({ success: true, value: { id: 7, name: 'Alice' } });
    expect(seen).toEqual([{ id: expect.stringMatching(/^c_/), name: 'users:get', args: { id: 7 } }]);
    expect(events.types()).toEqual(['session_init', ...TOOL_CALL_EVENTS, 'final']);
    expect(events.events[1].payload.callId).toBe(seen[0].id);
    expect(hostCounts()).toEqual(NO_LEAKS);
  });

  it('without a listener the broker runs the tool itself; once() and off() switch per call', async () => {
    const broker = usersBroker();
    const auto = broker.createSession();
    expect((await auto.execute("return await callTool('users:get', { id: 1 })")).value).toEqual({ id: 1, name: 'Alice' });

    const session = broker.createSession();
    const seen = [];
    session.once('tool_call', (call) => {
      seen.push(call.args.id);
      session.send({ type: 'tool_result', id: call.id, data: 'from the embedder' });
    });
    const result = await session.execute("return [await callTool('users:get', { id: 1 }), await callTool('users:get', { id: 2 })]");
    expect(result.value).toEqual(['from the embedder', { id: 2, name: 'Alice' }]);
    expect(seen).toEqual([1]);

    const third = broker.createSession();
    expect(third.on('tool_call', neverCalled).off('tool_call', neverCalled)).toBe(third);
    expect((await third.execute("return await callTool('users:get', { id: 3 })")).value).toEqual({ id: 3, name: 'Alice' });
  });

  it('sends data as a JSON copy, and an error with its code (TOOL_ERROR by default)', async () => {
    const broker = makeBroker();
    const session = broker.createSession();
    session.on('tool_call', (call) => {
      if (call.name === 'when') session.send({ type: 'tool_result', id: call.id, data: { at: new Date(0), tags: new Set(['a']) } });
      else if (call.name === 'coded') session.send({ type: 'tool_result', id: call.id, error: { message: 'no such row', code: 'NOT_FOUND' } });
      else session.send({ type: 'tool_result', id: call.id, error: 'plain failure' });
    });
    const result = await session.execute(`
      const when = await callTool('when', {});
      const failures = [];
      for (const name of ['coded', 'plain']) {
        try { await callTool(name, {}); } catch (e) { failures.push([e.code, e.message]); }
      }
      return { when, failures };`);
    expect(result.value).toEqual({
      when: { at: '1970-01-01T00:00:00.000Z', tags: ['a'] },
      failures: [
        ['NOT_FOUND', 'no such row'],
        ['TOOL_ERROR', 'plain failure'],
      ],
    });
  });

  it('a listener that throws or rejects fails the call as a throwing handler would', async () => {
    const broker = makeBroker();
    broker.tool('strict', { argsSchema: z.object({ n: z.number() }), handler: ({ n }) => n });
    const session = broker.createSession();
    session.on('tool_call', async (call) => {
      if (call.name === 'sync') throw Object.assign(new Error('listener broke'), { code: 'MY_CODE' });
      // Unknown tools and bad arguments reject executeToolCall; nobody catches it here.
      const result = await broker.executeToolCall(session.id, call);
      session.send({ type: 'tool_result', id: call.id, data: result });
    });
    const result = await session.execute(`
      const out = [];
      for (const [name, args] of [['sync', {}], ['missing', {}], ['strict', { n: 'x' }], ['strict', { n: 4 }]]) {
        try { out.push(await callTool(name, args)); } catch (e) { out.push(e.code + ': ' + e.message.split('\\n')[0]); }
      }
      return out;`);
    expect(result.value).toEqual(['MY_CODE: listener broke', 'UNKNOWN_TOOL: Unknown tool: missing', expect.stringMatching(/^VALIDATION_ERROR: Invalid arguments/), 4]);
  });

  it('executeToolCall runs middleware, secrets and broker events, with the waiting call’s signal', async () => {
    const order = [];
    const broker = makeBroker({
      middleware: [
        async (call, next) => {
          order.push(`before ${call.name}`);
          const value = await next(call);
          order.push(`after ${call.name}`);
          return value;
        },
      ],
    });
    broker.secret('KEY', 'k-1');
    let signal;
    broker.tool('read', {
      secrets: ['KEY'],
      handler: (args, ctx) => {
        signal = ctx.signal;
        return ctx.secrets.KEY;
      },
    });
    broker.on('tool:called', (session, tool) => order.push(`called ${tool}`));
    const session = broker.createSession();
    answerThroughBroker(broker, session);
    const result = await session.execute("return await callTool('read', {})");
    expect(result.value).toBe('k-1');
    expect(order).toEqual(['called read', 'before read', 'after read']);
    expect(signal).toBeInstanceOf(AbortSignal);
  });

  it('an unanswered call ends at perToolDeadlineMs and aborts the signal executeToolCall handed on', async () => {
    const broker = makeBroker({ limits: { perToolDeadlineMs: 300 } });
    let aborted = false;
    broker.tool('slow', {
      handler: (args, { signal }) =>
        new Promise((resolve) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve('too late');
          });
        }),
    });
    const session = broker.createSession();
    const pending = [];
    session.on('tool_call', (call) => {
      pending.push(call);
      // Runs the tool, but never answers.
      broker.executeToolCall(session.id, call);
    });
    const result = await session.execute("try { await callTool('slow', {}) } catch (e) { return e.code }");
    expect(result.value).toBe('DEADLINE_EXCEEDED');
    await waitFor(() => aborted, 5000, 'the handler’s signal aborted');
    // The call is no longer waiting: a late answer is refused.
    expect(() => session.send({ type: 'tool_result', id: pending[0].id, data: 1 })).toThrow(new Error(`No pending tool call ${pending[0].id}`));
  });

  it('allowedTools still decides first: a refused call never reaches the listener', async () => {
    const broker = usersBroker();
    const session = broker.createSession({ allowedTools: ['users:*'] });
    const seen = answerThroughBroker(broker, session);
    const result = await session.execute("try { await callTool('admin:drop', {}) } catch (e) { return e.code }");
    expect(result.value).toBe('TOOL_NOT_ALLOWED');
    expect(seen).toEqual([]);
  });
});

describe('misuse is a clear error', () => {
  it('send() of a bad message, an unknown id or an answered id', async () => {
    const broker = makeBroker();
    const session = broker.createSession();
    let second;
    session.on('tool_call', (call) => {
      session.send({ type: 'tool_result', id: call.id, data: 1 });
      try {
        session.send({ type: 'tool_result', id: call.id, data: 2 });
      } catch (error) {
        second = error.message;
      }
    });
    expect((await session.execute("return await callTool('x', {})")).value).toBe(1);
    expect(second).toMatch(/^No pending tool call c_/);
    expect(() => session.send({ type: 'tool_result', id: 'c_nope', data: 1 })).toThrow(new Error('No pending tool call c_nope'));
    const shape = "send() takes {type: 'tool_result', id, data} or {type: 'tool_result', id, error}";
    for (const bad of [undefined, null, 'x', { type: 'result', id: 'c_1' }]) expect(() => session.send(bad)).toThrow(new TypeError(shape));
    expect(() => session.send({ type: 'tool_result', id: 5 })).toThrow(new TypeError('send(): id must be the id of the tool_call (a string)'));
  });

  it("on()/once()/off() take only 'tool_call' and a function", () => {
    const session = makeBroker().createSession();
    expect(() => session.on('event', () => {})).toThrow(
      new TypeError("BrokerSession emits only 'tool_call' (stream events go to onEvent()), got \"event\""),
    );
    expect(() => session.once('tool_call', 'no')).toThrow(new TypeError("The 'tool_call' listener must be a function"));
    expect(() => session.off(undefined, () => {})).toThrow(TypeError);
  });

  it('executeToolCall and createSession refuse what they cannot use', async () => {
    const broker = usersBroker();
    const session = broker.createSession();
    await expect(broker.executeToolCall('s_missing', { name: 'users:get', args: {} })).rejects.toThrow(new Error('Session s_missing not found'));
    await expect(broker.executeToolCall(session.id, null)).rejects.toThrow(TypeError);
    await expect(broker.executeToolCall(session.id, { name: 'users:get', args: { id: 2 } })).resolves.toEqual({ id: 2, name: 'Alice' });
    await expect(broker.executeToolCall(session.id, { name: 'nope', args: {} })).rejects.toMatchObject({ code: 'UNKNOWN_TOOL' });
    expect(() => createSession({}, {})).toThrow(new TypeError('createSession(broker, config) needs a Broker'));
    const made = createSession(broker, { sessionId: 's_made' });
    expect(made).toBeInstanceOf(BrokerSession);
    expect(broker.getSession('s_made')).toBe(made);
    const disposed = new Broker();
    await disposed.dispose();
    await expect(disposed.executeToolCall(session.id, { name: 'users:get', args: {} })).rejects.toThrow(new Error('Broker is disposed'));
    expect(() => createSession(disposed)).toThrow(new Error('Broker is disposed'));
  });
});
