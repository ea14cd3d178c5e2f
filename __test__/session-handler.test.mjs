// SessionHandler over duck-typed BrokerRequest/BrokerResponse objects (1.J, C36 in docs/compatibility.md):
// routes, bodies, headers, the NDJSON stream, replay and its aliases, the cancel route.
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { createBroker, SessionHandler, createSessionHandler } from '../index.mjs';
import { ONE_TOOL_CALL_RUN, gatedTool, waitFor } from './helpers/index.mjs';

const SCRIPT_ONE_TOOL = "const r = await callTool('add', {a: 1, b: 2}); return r;";

function request({ method = 'GET', path = '/sessions', params = {}, query = {}, body, headers = {}, signal } = {}) {
  return { method, path, params, query, body, headers, signal };
}

// A BrokerResponse that records everything; `done` settles when the response ends.
function response({ writeResult = true } = {}) {
  let finish;
  const res = {
    statusCode: undefined,
    headers: {},
    chunks: [],
    body: undefined,
    ended: false,
    flushes: 0,
    statusCalls: [],
    done: new Promise((resolve) => {
      finish = resolve;
    }),
    status(code) {
      res.statusCode = code;
      res.statusCalls.push(code);
      return res;
    },
    json(data) {
      res.body = data;
      res.ended = true;
      finish();
    },
    setHeader(name, value) {
      res.headers[name] = value;
      return res;
    },
    write(chunk) {
      if (res.ended) throw new Error('write after end');
      res.chunks.push(chunk);
      return writeResult;
    },
    end() {
      if (res.ended) throw new Error('ended twice');
      res.ended = true;
      finish();
    },
    flush() {
      res.flushes += 1;
    },
    events() {
      const text = res.chunks.join('');
      if (text === '') return [];
      expect(text.endsWith('\n')).toBe(true);
      return text
        .slice(0, -1)
        .split('\n')
        .map((line) => JSON.parse(line));
    },
  };
  return res;
}

const until = (predicate, what) => waitFor(predicate, 10000, what);

const NDJSON_HEADERS = {
  'Content-Type': 'application/x-ndjson',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
};

const CORS_ANY = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, Accept, Last-Event-ID',
  'Access-Control-Max-Age': '86400',
};

let broker;
let handler;

beforeEach(() => {
  broker = createBroker();
  broker.tool('add', { handler: ({ a, b }) => a + b });
  handler = createSessionHandler({ broker });
});

afterEach(async () => {
  vi.restoreAllMocks();
  await broker.dispose();
});

async function stream(sessionId, query = {}, headers = {}, signal) {
  const res = response();
  await handler.streamSession(request({ params: { sessionId }, query, headers, signal }), res);
  return res;
}

// POSTs `code` to /sessions and waits for its first tool call; the run stays open.
async function postUntilToolCall(code, signal) {
  const post = response();
  const running = handler.createSession(request({ method: 'POST', body: { code }, signal }), post);
  await until(() => post.chunks.some((c) => c.includes('"type":"tool_call"')), 'the tool call');
  return { post, running, id: post.headers['X-Session-ID'] };
}

async function runScript(code, extra = {}) {
  const res = response();
  await handler.createSession(request({ method: 'POST', body: { code, ...extra } }), res);
  return res;
}

describe('routes', () => {
  it('lists the original eight routes in order, bound to the public handlers', () => {
    const routes = handler.getRoutes();
    expect(routes.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /sessions',
      'POST /sessions',
      'GET /sessions/:sessionId',
      'GET /sessions/:sessionId/stream',
      'DELETE /sessions/:sessionId',
      'OPTIONS /sessions',
      'OPTIONS /sessions/:sessionId',
      'OPTIONS /sessions/:sessionId/stream',
    ]);
    for (const route of routes) expect(typeof route.handler).toBe('function');
    for (const name of ['listSessions', 'createSession', 'getSession', 'streamSession', 'terminateSession', 'handleCors']) {
      expect(typeof SessionHandler.prototype[name]).toBe('function');
    }
    expect(new SessionHandler({ broker })).toBeInstanceOf(SessionHandler);
  });

  it('adds the cancel route and its preflight only with extraRoutes: true', () => {
    const extended = createSessionHandler({ broker, extraRoutes: true }).getRoutes();
    expect(extended.map((r) => `${r.method} ${r.path}`).slice(8)).toEqual([
      'POST /sessions/:sessionId/cancel',
      'OPTIONS /sessions/:sessionId/cancel',
    ]);
    expect(extended.slice(0, 8).map((r) => r.path)).toEqual(handler.getRoutes().map((r) => r.path));
  });

  it('route handlers are bound: they work when called detached', async () => {
    const list = handler.getRoutes()[0].handler;
    const res = response();
    await list(request(), res);
    expect(res.statusCode).toBe(200);
    expect(res.body).toEqual({ sessions: [], total: 0 });
  });
});

describe('CORS', () => {
  it("sends the wildcard set with '*' (the default) on every route, and 204 on OPTIONS", async () => {
    const res = response();
    await handler.handleCors(request({ method: 'OPTIONS' }), res);
    expect(res.statusCode).toBe(204);
    expect(res.headers).toEqual(CORS_ANY);
    expect(res.chunks).toEqual([]);
    expect(res.body).toBeUndefined();

    const list = response();
    await handler.listSessions(request({ headers: { origin: 'https://x.example' } }), list);
    expect(list.headers).toEqual(CORS_ANY);
  });

  it('echoes an allowed origin with Vary, and gives a disallowed or missing origin nothing', async () => {
    const h = createSessionHandler({ broker, allowedOrigins: ['https://app.example'] });
    const ok = response();
    await h.handleCors(request({ headers: { origin: 'https://app.example' } }), ok);
    expect(ok.headers).toEqual({ ...CORS_ANY, 'Access-Control-Allow-Origin': 'https://app.example', Vary: 'Origin' });

    const denied = response();
    await h.getSession(request({ params: { sessionId: 'nope' }, headers: { origin: 'https://evil.example' } }), denied);
    expect(denied.headers).toEqual({});
    expect(denied.statusCode).toBe(404);

    const none = response();
    await h.handleCors(request(), none);
    expect(none.headers).toEqual({});
    expect(none.statusCode).toBe(204);
  });

  it('sends no CORS headers with cors: false', async () => {
    const res = response();
    await createSessionHandler({ broker, cors: false }).listSessions(request(), res);
    expect(res.headers).toEqual({});
  });
});

describe('POST /sessions', () => {
  it('streams every event as one JSON line, flushed, with the NDJSON headers', async () => {
    const res = await runScript(SCRIPT_ONE_TOOL);
    const events = res.events();
    expect(events.map((e) => e.type)).toEqual(ONE_TOOL_CALL_RUN);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const [i, e] of events.entries()) expect(res.chunks[i]).toBe(JSON.stringify(e) + '\n');
    expect(res.chunks).toHaveLength(6);
    expect(res.flushes).toBe(6);
    expect(events[5].payload).toMatchObject({ ok: true, result: 3 });
    const id = events[0].sessionId;
    expect(res.headers).toEqual({ ...CORS_ANY, ...NDJSON_HEADERS, 'X-Session-ID': id });
    // The original leaves the status to the framework's default (200).
    expect(res.statusCalls).toEqual([]);
    expect(res.ended).toBe(true);
  });

  it('keeps the session in the broker after completion', async () => {
    const res = await runScript('return 1');
    const id = res.headers['X-Session-ID'];
    expect(broker.getSession(id).state).toBe('completed');
  });

  it('uses a client-supplied sessionId, and refuses one in use with 409 instead of replacing it', async () => {
    const res = await runScript('return 1', { sessionId: 's_client-chosen' });
    expect(res.headers['X-Session-ID']).toBe('s_client-chosen');
    expect(res.events().every((e) => e.sessionId === 's_client-chosen')).toBe(true);
    const held = broker.getSession('s_client-chosen');
    const again = await runScript('return 2', { sessionId: 's_client-chosen' });
    expect(again.statusCode).toBe(409);
    expect(again.body).toEqual({ code: 'SESSION_EXISTS', message: 'Session s_client-chosen already exists' });
    expect(broker.getSession('s_client-chosen')).toBe(held);
  });

  it('reports script failures in the final line with status 200, and accepts empty code', async () => {
    const res = await runScript("throw new Error('nope')");
    const final = res.events().at(-1);
    expect(final.type).toBe('final');
    expect(final.payload.ok).toBe(false);
    expect(res.statusCalls).toEqual([]);

    const empty = await runScript('');
    expect(empty.events().at(-1)).toMatchObject({ type: 'final', payload: { ok: true } });
  });

  it('rejects a missing body or a non-string code with 400 INVALID_REQUEST', async () => {
    for (const body of [undefined, null, {}, { code: 42 }, { code: null }, { code: ['x'] }, 'code']) {
      const res = response();
      await handler.createSession(request({ method: 'POST', body }), res);
      expect(res.statusCode).toBe(400);
      expect(res.body).toEqual({ code: 'INVALID_REQUEST', message: 'Missing or invalid "code" field' });
    }
    expect(broker.listSessions()).toEqual([]);
  });

  it('answers 503 SERVICE_UNAVAILABLE once the broker is disposed (after the body check)', async () => {
    await broker.dispose();
    const res = response();
    await handler.createSession(request({ method: 'POST', body: { code: 'return 1' } }), res);
    expect(res.statusCode).toBe(503);
    expect(res.body).toEqual({ code: 'SERVICE_UNAVAILABLE', message: 'Broker is disposed' });

    const bad = response();
    await handler.createSession(request({ method: 'POST', body: {} }), bad);
    expect(bad.statusCode).toBe(400);
  });

  it('answers 500 SESSION_CREATE_ERROR when the broker cannot create the session', async () => {
    const small = createBroker({ sessions: { maxSessions: 1 } });
    try {
      const h = createSessionHandler({ broker: small });
      const first = response();
      await h.createSession(request({ method: 'POST', body: { code: 'return 1' } }), first);
      expect(first.events().at(-1).type).toBe('final');
      // The finished session makes room; a session that has not run yet does not.
      small.createSession();
      const second = response();
      await h.createSession(request({ method: 'POST', body: { code: 'return 1' } }), second);
      expect(second.statusCode).toBe(500);
      expect(second.body).toEqual({
        code: 'SESSION_CREATE_ERROR',
        message: 'Maximum sessions reached (1). Wait for existing sessions to complete or increase maxSessions.',
      });
    } finally {
      await small.dispose();
    }
  });

  it('answers 500 SESSION_CREATE_ERROR for a filter the EventFilter constructor rejects', async () => {
    for (const filter of [{ mode: 'include' }, { typeFilter: { mode: 'include', types: ['final'] } }]) {
      const res = response();
      await handler.createSession(request({ method: 'POST', body: { code: 'return 1', filter } }), res);
      expect(res.statusCode).toBe(500);
      expect(res.body).toEqual({ code: 'SESSION_CREATE_ERROR', message: 'this.config.rules is not iterable' });
    }
    expect(broker.listSessions()).toEqual([]);
  });

  it('applies the body filter to the live stream (seq numbers keep their gaps)', async () => {
    const res = await runScript(SCRIPT_ONE_TOOL, {
      filter: { mode: 'include', rules: [{ types: { types: ['tool_call'] } }] },
    });
    const events = res.events();
    expect(events.map((e) => [e.seq, e.type])).toEqual([
      [1, 'session_init'],
      [2, 'tool_call'],
      [6, 'final'],
    ]);
  });

  it('maps config to limits: maxToolCalls, heartbeatIntervalMs, maxExecutionMs → sessionTtlMs', async () => {
    const calls = await runScript("await callTool('add', {a: 1, b: 1}); await callTool('add', {a: 1, b: 1}); return 1", {
      config: { maxToolCalls: 1 },
    });
    const final = calls.events().at(-1).payload;
    expect(final.ok).toBe(false);
    expect(final.error.message).toContain('Maximum tool call limit exceeded (1)');

    const ttl = await runScript('return 1', { config: { maxExecutionMs: 123456 } });
    const session = broker.getSession(ttl.headers['X-Session-ID']);
    expect(session.expiresAt - session.createdAt).toBe(123456);
    expect(ttl.events()[0].payload.expiresAt).toBe(new Date(session.expiresAt).toISOString());

    const gate = gatedTool(broker);
    const beat = response();
    const running = handler.createSession(
      request({ method: 'POST', body: { code: "return await callTool('wait', {})", config: { heartbeatIntervalMs: 10 } } }),
      beat,
    );
    await until(() => beat.chunks.some((c) => c.includes('"type":"heartbeat"')), 'a heartbeat');
    gate.open();
    await running;
    const hb = beat.events().find((e) => e.type === 'heartbeat');
    expect(Object.keys(hb.payload)).toEqual(['ts']);
    expect(beat.events().at(-1).payload.ok).toBe(true);
  });

  it('with no config, drops the broker-level limits for the defaults (Q1)', async () => {
    const limited = createBroker({ limits: { maxToolCalls: 1 } });
    try {
      limited.tool('add', { handler: ({ a, b }) => a + b });
      const h = createSessionHandler({ broker: limited });
      const code = "await callTool('add', {a: 1, b: 1}); return await callTool('add', {a: 2, b: 2})";
      const res = response();
      await h.createSession(request({ method: 'POST', body: { code } }), res);
      expect(res.events().at(-1).payload).toMatchObject({ ok: true, result: 4 });
      // Direct use of the same broker still has its limit: the HTTP path is what differs.
      const direct = await limited.execute(code);
      expect(direct.success).toBe(false);
    } finally {
      await limited.dispose();
    }
  });

  it("cancels the session with 'Client disconnected' when req.signal aborts", async () => {
    const gate = gatedTool(broker);
    const controller = new AbortController();
    const { post: res, running, id } = await postUntilToolCall("return await callTool('wait', {})", controller.signal);
    controller.abort();
    expect(broker.getSession(id).state).toBe('cancelled');
    gate.open();
    await running;
    expect(res.ended).toBe(true);
    // Unsubscribed at the abort: the final event produced after it was not written.
    expect(res.events().some((e) => e.type === 'final')).toBe(false);
    expect(broker.getSession(id).getEvents().at(-1).payload.error.code).toBe('SESSION_CANCELLED');
  });

  it('never waits on a response that reports backpressure', async () => {
    const res = response({ writeResult: false });
    await handler.createSession(request({ method: 'POST', body: { code: SCRIPT_ONE_TOOL } }), res);
    expect(res.ended).toBe(true);
    expect(res.events().at(-1).type).toBe('final');
  });

  it('works without flush() on the response', async () => {
    const res = response();
    delete res.flush;
    await handler.createSession(request({ method: 'POST', body: { code: 'return 7' } }), res);
    expect(res.events().at(-1).payload.result).toBe(7);
  });
});

describe('GET /sessions and GET /sessions/:sessionId', () => {
  it('lists sessions with toolCallCount hard-coded to 0, while the detail has the real count', async () => {
    const res = await runScript(SCRIPT_ONE_TOOL);
    const id = res.headers['X-Session-ID'];
    const list = response();
    await handler.listSessions(request(), list);
    expect(list.statusCode).toBe(200);
    expect(list.body.total).toBe(1);
    const [entry] = list.body.sessions;
    expect(Object.keys(entry)).toEqual(['sessionId', 'state', 'createdAt', 'expiresAt', 'stats']);
    expect(entry).toMatchObject({ sessionId: id, state: 'completed', stats: { toolCallCount: 0 } });
    expect(entry.stats.duration).toBeGreaterThanOrEqual(0);

    const detail = response();
    await handler.getSession(request({ params: { sessionId: id } }), detail);
    expect(detail.statusCode).toBe(200);
    const session = broker.getSession(id);
    expect(detail.body).toEqual({
      sessionId: id,
      state: 'completed',
      createdAt: session.createdAt,
      expiresAt: session.expiresAt,
      stats: { duration: detail.body.stats.duration, toolCallCount: 1 },
    });
  });

  it('answers 404 NOT_FOUND and 400 for a missing id', async () => {
    const missing = response();
    await handler.getSession(request({ params: { sessionId: 's_nope' } }), missing);
    expect(missing.statusCode).toBe(404);
    expect(missing.body).toEqual({ code: 'NOT_FOUND', message: 'Session s_nope not found' });

    const noId = response();
    await handler.getSession(request({ params: {} }), noId);
    expect(noId.statusCode).toBe(400);
    expect(noId.body).toEqual({ code: 'INVALID_REQUEST', message: 'Missing sessionId' });
  });

  it('answers 500 INTERNAL_ERROR when listing fails', async () => {
    const h = createSessionHandler({
      broker: {
        listSessions() {
          throw new Error('store down');
        },
      },
    });
    const res = response();
    await h.listSessions(request(), res);
    expect(res.statusCode).toBe(500);
    expect(res.body).toEqual({ code: 'INTERNAL_ERROR', message: 'Failed to list sessions' });
  });
});

describe('GET /sessions/:sessionId/stream', () => {

  it('replays a finished session from the start and ends', async () => {
    const run = await runScript(SCRIPT_ONE_TOOL);
    const id = run.headers['X-Session-ID'];
    const res = await stream(id);
    expect(res.ended).toBe(true);
    expect(res.chunks.join('')).toBe(run.chunks.join(''));
    expect(res.headers).toEqual({ ...CORS_ANY, ...NDJSON_HEADERS, 'X-Session-ID': id });
  });

  it('starts at fromSeq (inclusive); NaN or negative means 0', async () => {
    const id = (await runScript(SCRIPT_ONE_TOOL)).headers['X-Session-ID'];
    expect((await stream(id, { fromSeq: '4' })).events().map((e) => e.seq)).toEqual([4, 5, 6]);
    expect((await stream(id, { fromSeq: '4abc' })).events().map((e) => e.seq)).toEqual([4, 5, 6]);
    expect((await stream(id, { fromSeq: 'x' })).events()).toHaveLength(6);
    expect((await stream(id, { fromSeq: '-3' })).events()).toHaveLength(6);
    expect((await stream(id, { fromSeq: '99' })).events()).toEqual([]);
  });

  it("accepts ?from= and Last-Event-ID (+1) only when fromSeq is absent", async () => {
    const id = (await runScript(SCRIPT_ONE_TOOL)).headers['X-Session-ID'];
    const seqs = async (query, headers) => (await stream(id, query, headers)).events().map((e) => e.seq);
    expect(await seqs({ from: '5' })).toEqual([5, 6]);
    expect(await seqs({}, { 'last-event-id': '4' })).toEqual([5, 6]);
    expect(await seqs({}, { 'Last-Event-ID': '3' })).toEqual([4, 5, 6]);
    expect(await seqs({ fromSeq: '2', from: '5' }, { 'last-event-id': '5' })).toEqual([2, 3, 4, 5, 6]);
    expect(await seqs({ from: '3' }, { 'last-event-id': '5' })).toEqual([3, 4, 5, 6]);
    expect(await seqs({}, { 'last-event-id': 'garbage' })).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('replays and then follows a live session until final, with no event lost or repeated', async () => {
    const gate = gatedTool(broker);
    const { post, running, id } = await postUntilToolCall("await callTool('wait', {}); return await callTool('add', {a: 2, b: 3})");
    const live = response();
    const handled = handler.streamSession(request({ params: { sessionId: id }, query: { fromSeq: '2' } }), live);
    await handled;
    expect(live.ended).toBe(false);
    expect(live.events()[0].seq).toBe(2);
    gate.open();
    await running;
    await live.done;
    const seqs = live.events().map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 2));
    expect(live.events().at(-1)).toMatchObject({ type: 'final', payload: { ok: true, result: 5 } });
    expect(live.chunks.join('')).toBe(post.chunks.slice(1).join(''));
  });

  it('applies ?filter= to replay and live events, and still ends at a filtered-out final', async () => {
    const gate = gatedTool(broker);
    const { running, id } = await postUntilToolCall("await callTool('wait', {}); return await callTool('add', {a: 1, b: 1})");
    const filter = JSON.stringify({ mode: 'include', alwaysAllow: [], rules: [{ types: { types: ['tool_call'] } }] });
    const live = response();
    await handler.streamSession(request({ params: { sessionId: id }, query: { filter } }), live);
    gate.open();
    await running;
    await live.done;
    const events = live.events();
    expect(events.map((e) => e.type)).toEqual(['tool_call', 'tool_call']);
    expect(live.ended).toBe(true);
  });

  it('rejects a bad filter with 400 INVALID_FILTER', async () => {
    const id = (await runScript('return 1')).headers['X-Session-ID'];
    for (const filter of ['{not json', JSON.stringify({ mode: 'include' }), 'null']) {
      const res = await stream(id, { filter });
      expect(res.statusCode).toBe(400);
      expect(res.body).toEqual({ code: 'INVALID_FILTER', message: 'Invalid filter configuration' });
      expect(res.chunks).toEqual([]);
    }
  });

  it('answers 404 for an unknown session and 400 without an id', async () => {
    const res = await stream('s_unknown');
    expect(res.statusCode).toBe(404);
    expect(res.body).toEqual({ code: 'NOT_FOUND', message: 'Session s_unknown not found' });
    const noId = await stream('');
    expect(noId.statusCode).toBe(400);
    expect(noId.body).toEqual({ code: 'INVALID_REQUEST', message: 'Missing sessionId' });
  });

  it('on disconnect only unsubscribes: the session runs on', async () => {
    const gate = gatedTool(broker);
    const { running, id } = await postUntilToolCall("return await callTool('wait', {})");
    const controller = new AbortController();
    const live = await stream(id, {}, {}, controller.signal);
    const written = live.chunks.length;
    controller.abort();
    gate.open();
    await running;
    expect(broker.getSession(id).state).toBe('completed');
    expect(live.chunks).toHaveLength(written);
    expect(live.ended).toBe(false);
  });
});

// A session double whose history and live deliveries overlap or race the way a native
// session's can (events produced on engine threads reach listeners asynchronously).
const fakeEvent = (seq, type = 'tool_progress') => ({ protocolVersion: 2, sessionId: 's_fake', seq, type, payload: {} });

function fakeBroker(session) {
  return { getSession: (id) => (id === session.sessionId ? session : undefined) };
}

function fakeSession({ history, terminal = false, duringReplay = [] }) {
  const listeners = new Set();
  const session = {
    sessionId: 's_fake',
    isTerminal: () => terminal,
    onEvent(h) {
      listeners.add(h);
      return () => listeners.delete(h);
    },
    getEvents() {
      for (const e of duringReplay) session.emit(e);
      return history.slice();
    },
    emit(e) {
      // A copy: a listener may unsubscribe while being called.
      for (const h of Array.from(listeners)) h(e);
    },
    listenerCount: () => listeners.size,
  };
  return session;
}

async function openFakeStream(session, query = {}) {
  const res = response();
  const h = createSessionHandler({ broker: fakeBroker(session), cors: false });
  await h.streamSession(request({ params: { sessionId: 's_fake' }, query }), res);
  return res;
}

describe('stream replay/live hand-over', () => {

  it('writes events that are both in the history and delivered live only once', async () => {
    const session = fakeSession({ history: [fakeEvent(1, 'session_init'), fakeEvent(2, 'tool_call'), fakeEvent(3)] });
    const res = await openFakeStream(session);
    for (const seq of [2, 3, 4]) session.emit(fakeEvent(seq));
    session.emit(fakeEvent(5, 'final'));
    expect(res.events().map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(res.ended).toBe(true);
    expect(session.listenerCount()).toBe(0);
  });

  it('keeps events delivered while the history is being read, in seq order', async () => {
    const session = fakeSession({
      history: [fakeEvent(1, 'session_init'), fakeEvent(2), fakeEvent(3)],
      duringReplay: [fakeEvent(3), fakeEvent(4)],
    });
    const res = await openFakeStream(session, { fromSeq: '2' });
    expect(res.events().map((e) => e.seq)).toEqual([2, 3, 4]);
    session.emit(fakeEvent(5, 'final'));
    expect(res.events().map((e) => e.seq)).toEqual([2, 3, 4, 5]);
    expect(res.ended).toBe(true);
  });

  it('ends after the replay when the session is already terminal, final or not', async () => {
    const session = fakeSession({ history: [fakeEvent(1, 'session_init'), fakeEvent(2, 'tool_call')], terminal: true });
    const res = await openFakeStream(session);
    expect(res.events().map((e) => e.seq)).toEqual([1, 2]);
    expect(res.ended).toBe(true);
    expect(session.listenerCount()).toBe(0);
  });

  it('a replay the filter cannot evaluate rejects without leaving a listener behind', async () => {
    const session = fakeSession({ history: [fakeEvent(1, 'session_init'), fakeEvent(2, 'tool_call')] });
    const h = createSessionHandler({ broker: fakeBroker(session), cors: false });
    const res = response();
    const filter = JSON.stringify({ mode: 'include', rules: 'not-an-array' });
    await expect(
      h.streamSession(request({ params: { sessionId: 's_fake' }, query: { filter } }), res),
    ).rejects.toThrow('this.config.rules.some is not a function');
    expect(session.listenerCount()).toBe(0);
  });
});

describe('DELETE /sessions/:sessionId', () => {
  it('terminates and removes the session, then 404s', async () => {
    const id = (await runScript('return 1')).headers['X-Session-ID'];
    const res = response();
    await handler.terminateSession(request({ method: 'DELETE', params: { sessionId: id } }), res);
    expect(res.statusCode).toBe(200);
    expect(res.body).toEqual({ success: true, sessionId: id });
    expect(broker.getSession(id)).toBeUndefined();

    const again = response();
    await handler.terminateSession(request({ method: 'DELETE', params: { sessionId: id } }), again);
    expect(again.statusCode).toBe(404);
    expect(again.body).toEqual({ code: 'NOT_FOUND', message: `Session ${id} not found` });

    const noId = response();
    await handler.terminateSession(request({ method: 'DELETE', params: {} }), noId);
    expect(noId.statusCode).toBe(400);
  });
});

describe('POST /sessions/:sessionId/cancel', () => {
  it('cancels a running session but keeps it for replay', async () => {
    const gate = gatedTool(broker);
    const { post, running, id } = await postUntilToolCall("return await callTool('wait', {})");
    const res = response();
    await handler.cancelSession(request({ method: 'POST', params: { sessionId: id }, body: { reason: 'user' } }), res);
    expect(res.statusCode).toBe(200);
    expect(res.body).toEqual({ success: true, sessionId: id });
    expect(res.headers).toEqual(CORS_ANY);
    gate.open();
    await running;
    const final = post.events().at(-1);
    expect(final).toMatchObject({ type: 'final', payload: { ok: false, error: { code: 'SESSION_CANCELLED' } } });
    expect(broker.getSession(id).state).toBe('cancelled');
    const replay = await (async () => {
      const r = response();
      await handler.streamSession(request({ params: { sessionId: id }, query: {} }), r);
      return r;
    })();
    expect(replay.chunks.join('')).toBe(post.chunks.join(''));
  });

  it('passes the reason to a session that has not started', async () => {
    const session = broker.createSession();
    const res = response();
    await handler.cancelSession(
      request({ method: 'POST', params: { sessionId: session.sessionId }, body: { reason: 'changed my mind' } }),
      res,
    );
    expect(res.statusCode).toBe(200);
    const events = session.getEvents();
    expect(events.map((e) => e.type)).toEqual(['error', 'final']);
    expect(events[0].payload.message).toBe('changed my mind');
  });

  it('answers 404 for an unknown session and 400 without an id', async () => {
    const res = response();
    await handler.cancelSession(request({ method: 'POST', params: { sessionId: 's_gone' } }), res);
    expect(res.statusCode).toBe(404);
    expect(res.body).toEqual({ code: 'NOT_FOUND', message: 'Session s_gone not found' });
    const noId = response();
    await handler.cancelSession(request({ method: 'POST', params: {} }), noId);
    expect(noId.statusCode).toBe(400);
  });
});
