// The runtime channel as the original's clients speak it: frames of the original runtime's
// message shapes (fixtures/original-runtime-messages.mjs), replayed byte for byte over a plain
// WebSocket client (`ws`, the client the original's WebSocketChannel uses in Node), drive a
// worker started with the CLI. What comes back is the v2 stream of each session.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as frames from './fixtures/original-runtime-messages.mjs';
import { workersStoppedAfterAll } from './helpers/runtime.mjs';

const startWorker = workersStoppedAfterAll();
let worker;
let busyWorker;

beforeAll(async () => {
  [worker, busyWorker] = await Promise.all([startWorker(), startWorker({ args: ['--max-sessions', '1'] })]);
});

const open = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.terminate();
});

// A client that records every message and can wait for one that matches.
function connect(url, options) {
  const socket = new WebSocket(url, options);
  open.push(socket);
  const messages = [];
  const waiters = [];
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString());
    messages.push(message);
    for (const waiter of waiters.slice()) {
      if (waiter.match(message)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    }
  });
  const closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const recorder = {
    socket,
    messages,
    closed,
    ready: new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    }),
    next(match, label = 'message') {
      const seen = messages.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${label} within 10 s: ${JSON.stringify(messages)}`)), 10000);
        waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
    final(sessionId) {
      return recorder.next((m) => m.type === 'final' && m.sessionId === sessionId, `final of ${sessionId}`);
    },
    events(sessionId) {
      return messages.filter((m) => m.sessionId === sessionId);
    },
  };
  return recorder;
}

async function client(target = worker) {
  const c = connect(target.wsUrl);
  await c.ready;
  return c;
}

describe('the original runtime protocol drives our worker', () => {
  it('announces itself, then runs the integration spec\'s execute to a full v2 stream', async () => {
    const c = await client();
    const ready = await c.next((m) => m.type === 'runtime_ready');
    expect(ready).toEqual({ type: 'runtime_ready', protocolVersion: 2, maxSessions: 10, activeSessions: 0, maxMessageBytes: 64 * 1024 * 1024 });
    c.socket.send(frames.EXECUTE);
    const final = await c.final('s_integration1');
    expect(final.payload).toMatchObject({ ok: true, result: 2, stats: { toolCallCount: 0 } });
    const events = c.events('s_integration1');
    expect(events.map((e) => e.type)).toEqual(['session_init', 'final']);
    expect(events.map((e) => e.seq)).toEqual([1, 2]);
    expect(Object.keys(events[0])).toEqual(['protocolVersion', 'sessionId', 'seq', 'type', 'payload']);
  });

  it('a tool call goes to the client, and its tool_result resolves it', async () => {
    const c = await client();
    c.socket.send(frames.EXECUTE_WITH_TOOL('s_tool1'));
    const call = await c.next((m) => m.type === 'tool_call' && m.sessionId === 's_tool1');
    expect(call.payload).toEqual({ callId: expect.stringMatching(/^c_/), toolName: 'getUser', args: { id: 1 } });
    c.socket.send(frames.TOOL_RESULT('s_tool1', call.payload.callId));
    expect((await c.final('s_tool1')).payload).toMatchObject({ ok: true, result: 'Ada', stats: { toolCallCount: 1 } });
    expect(c.events('s_tool1').map((e) => e.type)).toEqual([
      'session_init',
      'tool_call',
      'tool_progress',
      'tool_progress',
      'tool_result_applied',
      'final',
    ]);
  });

  it('a failed tool_result rejects the call inside the script with its code', async () => {
    const c = await client();
    c.socket.send(frames.EXECUTE_WITH_TOOL('s_tool2'));
    const call = await c.next((m) => m.type === 'tool_call' && m.sessionId === 's_tool2');
    c.socket.send(frames.TOOL_RESULT_ERROR('s_tool2', call.payload.callId));
    expect((await c.final('s_tool2')).payload.error).toEqual({ code: 'NOT_FOUND', message: 'no such user', name: 'Error' });
  });

  it("the types package's tool_result_submit and cancel forms work too", async () => {
    const c = await client();
    c.socket.send(frames.EXECUTE_WITH_TOOL('s_submit'));
    const call = await c.next((m) => m.type === 'tool_call' && m.sessionId === 's_submit');
    c.socket.send(frames.TOOL_RESULT_SUBMIT('s_submit', call.payload.callId));
    expect((await c.final('s_submit')).payload.result).toBe('Grace');

    c.socket.send(frames.EXECUTE_WITH_TOOL('s_cancel2'));
    await c.next((m) => m.type === 'tool_call' && m.sessionId === 's_cancel2');
    c.socket.send(frames.CANCEL_MESSAGE('s_cancel2'));
    expect((await c.final('s_cancel2')).payload.error.code).toBe('SESSION_CANCELLED');
  });

  it("cancel stops the integration spec's endless loop", async () => {
    const c = await client();
    c.socket.send(frames.EXECUTE_LOOP);
    await c.next((m) => m.type === 'session_init' && m.sessionId === 's_cancel1');
    c.socket.send(frames.CANCEL);
    expect((await c.final('s_cancel1')).payload.error).toEqual({ code: 'SESSION_CANCELLED', message: 'Session was cancelled', name: 'Error' });
  });

  it('ping is answered; unknown types and results for unknown sessions are ignored', async () => {
    const c = await client();
    c.socket.send(frames.UNKNOWN_TYPE);
    c.socket.send(frames.TOOL_RESULT_FOR_UNKNOWN_SESSION);
    c.socket.send(frames.PING);
    expect(await c.next((m) => m.type === 'pong')).toEqual({ type: 'pong', timestamp: 1700000000000 });
    expect(c.socket.readyState).toBe(WebSocket.OPEN);
  });

  it("the request's limits apply on the worker (maxToolCalls)", async () => {
    const c = await client();
    c.socket.send(
      JSON.stringify({ type: 'execute', sessionId: 's_limits', code: "await callTool('t', {}); await callTool('t', {})", limits: { maxToolCalls: 1 } }),
    );
    const call = await c.next((m) => m.type === 'tool_call' && m.sessionId === 's_limits');
    c.socket.send(JSON.stringify({ type: 'tool_result', sessionId: 's_limits', callId: call.payload.callId, success: true, value: 1 }));
    expect((await c.final('s_limits')).payload.error.code).toBe('MAX_TOOL_CALLS_EXCEEDED');
  });

  it('a second session with a running id, and one past maxSessions, are refused with a stream of their own', async () => {
    const c = await client();
    c.socket.send(JSON.stringify({ type: 'execute', sessionId: 's_twice', code: "await callTool('t', {})" }));
    await c.next((m) => m.type === 'tool_call' && m.sessionId === 's_twice');
    c.socket.send(JSON.stringify({ type: 'execute', sessionId: 's_twice', code: 'return 1' }));
    const refused = await c.next((m) => m.type === 'error' && m.sessionId === 's_twice');
    expect(refused.payload).toEqual({ code: 'SESSION_EXISTS', message: 'Session s_twice already exists', recoverable: true });

    const b = await client(busyWorker);
    b.socket.send(JSON.stringify({ type: 'execute', sessionId: 's_one', code: "await callTool('t', {})" }));
    await b.next((m) => m.type === 'tool_call' && m.sessionId === 's_one');
    b.socket.send(JSON.stringify({ type: 'execute', sessionId: 's_two', code: 'return 2' }));
    expect((await b.final('s_two')).payload.error).toEqual({ code: 'RUNTIME_BUSY', message: 'Maximum sessions reached (1)' });
  });

  it('malformed frames close only the connection that sent them', async () => {
    const good = await client();
    good.socket.send(JSON.stringify({ type: 'execute', sessionId: 's_survivor', code: "return await callTool('t', {})" }));
    const call = await good.next((m) => m.type === 'tool_call' && m.sessionId === 's_survivor');
    const codes = [];
    for (const bad of ['not json', '[1,2]', '{"type":"execute","sessionId":"s_x"}', '{"type":"tool_result","sessionId":"s","callId":"c"}']) {
      const c = await client();
      c.socket.send(bad);
      codes.push((await c.closed).code);
    }
    const binary = await client();
    binary.socket.send(Buffer.from([1, 2, 3]));
    codes.push((await binary.closed).code);
    expect(codes).toEqual([1007, 1007, 1007, 1007, 1003]);
    good.socket.send(JSON.stringify({ type: 'tool_result', sessionId: 's_survivor', callId: call.payload.callId, success: true, value: 'alive' }));
    expect((await good.final('s_survivor')).payload.result).toBe('alive');
  });
});
