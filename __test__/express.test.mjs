// The HTTP API through real Express 4 and Express 5 apps on real sockets, driven with
// Node's fetch: registerExpressRoutes (the original's form and the documented overload),
// createExpressRouter (a working router, C30 in docs/compatibility.md), streaming, replay and resume, filters,
// the cancel route (C36 in docs/compatibility.md), and the adapter's error and disconnect handling.
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { once, EventEmitter } from 'node:events';
import express5 from 'express';
import express4 from 'express4';
import { createBroker, createSessionHandler, registerExpressRoutes, createExpressRouter } from '../index.mjs';
import { ONE_TOOL_CALL_RUN, gatedTool, ndjsonReader } from './helpers/index.mjs';

const VERSIONS = [
  ['Express 4', express4],
  ['Express 5', express5],
];

const CORS_ANY = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
  'access-control-allow-headers': 'Content-Type, Accept, Last-Event-ID',
  'access-control-max-age': '86400',
};

async function listen(app) {
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

function close(server) {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(resolve));
}

function pickHeaders(res, names) {
  return Object.fromEntries(names.map((n) => [n, res.headers.get(n)]));
}

function corsHeadersOf(res) {
  return Object.fromEntries([...res.headers].filter(([name]) => name.startsWith('access-control-')));
}

const lines = ndjsonReader;

function postJson(base, path, body, init = {}) {
  return fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: init.signal,
  });
}

// An app-level auth check, as the docs' `middleware` option shows.
function auth(req, res, next) {
  if (req.headers.authorization !== 'Bearer ok') {
    res.status(401).json({ code: 'UNAUTHORIZED' });
    return;
  }
  next();
}

// The parts of an Express request the adapter reads, with a socket in the given state.
function fakeReq(destroyed) {
  const req = new EventEmitter();
  Object.assign(req, { method: 'GET', path: '/x', params: {}, query: {}, body: undefined, headers: {} });
  req.socket = { destroyed };
  return req;
}

const isProcessing = (e) => e.type === 'tool_progress' && e.payload.phase === 'processing';

const GATED = "await callTool('wait', {}); const x = await callTool('add', {a: 20, b: 22}); return x;";

afterEach(() => {
  vi.restoreAllMocks();
});

describe.each(VERSIONS)('%s with registerExpressRoutes(app, handler)', (_name, express) => {
  let broker;
  let gate;
  let server;
  let base;

  beforeEach(async () => {
    broker = createBroker();
    broker.tool('add', { handler: ({ a, b }) => a + b });
    broker.tool('echo', { handler: ({ s }) => s.length });
    gate = gatedTool(broker);
    const app = express();
    app.use(express.json({ limit: '1mb' }));
    registerExpressRoutes(app, createSessionHandler({ broker }));
    ({ server, base } = await listen(app));
  });

  afterEach(async () => {
    gate.open();
    await close(server);
    await broker.dispose();
  });

  it('POST /sessions streams exact NDJSON lines with the documented headers', async () => {
    const res = await postJson(base, '/sessions', { code: "return await callTool('add', {a: 1, b: 2})" });
    expect(res.status).toBe(200);
    const id = res.headers.get('x-session-id');
    expect(id).toMatch(/^s_[0-9a-f-]{36}$/);
    expect(pickHeaders(res, ['content-type', 'cache-control', 'connection'])).toEqual({
      'content-type': 'application/x-ndjson',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    expect(corsHeadersOf(res)).toEqual(CORS_ANY);
    const text = await res.text();
    const history = broker.getSession(id).getEvents();
    expect(text).toBe(history.map((e) => JSON.stringify(e) + '\n').join(''));
    expect(history.map((e) => e.type)).toEqual(ONE_TOOL_CALL_RUN);
    expect(history.at(-1).payload).toMatchObject({ ok: true, result: 3 });
    // Finished sessions stay in the broker for replay.
    expect(broker.getSession(id).state).toBe('completed');
  });

  it('answers preflights with 204, CORS headers and an empty body on every path', async () => {
    for (const path of ['/sessions', '/sessions/s_x', '/sessions/s_x/stream', '/sessions/s_x/cancel']) {
      const res = await fetch(base + path, { method: 'OPTIONS', headers: { origin: 'https://a.example' } });
      expect(res.status).toBe(204);
      expect(corsHeadersOf(res)).toEqual(CORS_ANY);
      expect(await res.text()).toBe('');
    }
  });

  it('lists, gets, deletes, and answers 404 for unknown ids', async () => {
    const created = await postJson(base, '/sessions', { code: "return await callTool('add', {a: 1, b: 1})" });
    const id = created.headers.get('x-session-id');
    await created.text();

    const list = await fetch(base + '/sessions');
    expect(list.status).toBe(200);
    const listBody = await list.json();
    expect(listBody.total).toBe(1);
    expect(listBody.sessions[0]).toMatchObject({ sessionId: id, state: 'completed', stats: { toolCallCount: 0 } });

    const detail = await fetch(`${base}/sessions/${id}`);
    expect(detail.status).toBe(200);
    expect(await detail.json()).toMatchObject({ sessionId: id, state: 'completed', stats: { toolCallCount: 1 } });

    for (const [method, path] of [
      ['GET', '/sessions/s_nope'],
      ['GET', '/sessions/s_nope/stream'],
      ['DELETE', '/sessions/s_nope'],
      ['POST', '/sessions/s_nope/cancel'],
    ]) {
      const res = await fetch(base + path, { method });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ code: 'NOT_FOUND', message: 'Session s_nope not found' });
    }

    const del = await fetch(`${base}/sessions/${id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ success: true, sessionId: id });
    expect((await fetch(`${base}/sessions/${id}`)).status).toBe(404);
    expect(await (await fetch(base + '/sessions')).json()).toEqual({ sessions: [], total: 0 });
  });

  it('rejects bad bodies with 400: non-string code, no JSON, malformed JSON', async () => {
    for (const body of [{ code: 42 }, {}, { code: null }, []]) {
      const res = await postJson(base, '/sessions', body);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ code: 'INVALID_REQUEST', message: 'Missing or invalid "code" field' });
    }
    const plain = await fetch(base + '/sessions', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'return 1',
    });
    expect(plain.status).toBe(400);
    expect(await plain.json()).toEqual({ code: 'INVALID_REQUEST', message: 'Missing or invalid "code" field' });
    // express.json's own rejection, before any handler runs.
    const malformed = await postJson(base, '/sessions', '{"code": "return 1",');
    expect(malformed.status).toBe(400);
    await malformed.text();
    expect(broker.listSessions()).toEqual([]);
  });

  it('answers 503 once the broker is disposed', async () => {
    await broker.dispose();
    const res = await postJson(base, '/sessions', { code: 'return 1' });
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ code: 'SERVICE_UNAVAILABLE', message: 'Broker is disposed' });
  });

  it('replays a finished session with fromSeq, from and Last-Event-ID', async () => {
    const created = await postJson(base, '/sessions', { code: "return await callTool('add', {a: 1, b: 1})" });
    const id = created.headers.get('x-session-id');
    const all = await created.text();
    const allLines = all.split('\n').slice(0, -1);
    const replay = async (query, headers = {}) => {
      const res = await fetch(`${base}/sessions/${id}/stream${query}`, { headers });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-session-id')).toBe(id);
      expect(res.headers.get('content-type')).toBe('application/x-ndjson');
      return (await res.text()).split('\n').slice(0, -1);
    };
    expect(await replay('')).toEqual(allLines);
    expect(await replay('?fromSeq=4')).toEqual(allLines.slice(3));
    expect(await replay('?from=5')).toEqual(allLines.slice(4));
    expect(await replay('', { 'Last-Event-ID': '5' })).toEqual(allLines.slice(5));
    expect(await replay('?fromSeq=2&from=5', { 'Last-Event-ID': '5' })).toEqual(allLines.slice(1));
    expect(await replay('?fromSeq=abc')).toEqual(allLines);
  });

  for (const [alias, reconnect] of [
    ['?fromSeq=', (url, id, last) => fetch(`${url}/sessions/${id}/stream?fromSeq=${last + 1}`)],
    ['?from=', (url, id, last) => fetch(`${url}/sessions/${id}/stream?from=${last + 1}`)],
    ['Last-Event-ID', (url, id, last) => fetch(`${url}/sessions/${id}/stream`, { headers: { 'Last-Event-ID': String(last) } })],
  ]) {
    it(`resumes a live stream after a disconnect with ${alias}: every seq exactly once, ending at final`, async () => {
      const controller = new AbortController();
      const first = await postJson(base, '/sessions', { code: GATED }, { signal: controller.signal });
      const id = first.headers.get('x-session-id');
      const before = await lines(first).until((e) => e.type === 'tool_call');
      controller.abort();
      const last = before.at(-1).seq;

      const resumed = await reconnect(base, id, last);
      expect(resumed.status).toBe(200);
      const reader = lines(resumed);
      gate.open();
      const after = await reader.rest();

      const seqs = [...before, ...after].map((e) => e.seq);
      const total = after.at(-1).seq;
      expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(after.at(-1).type).toBe('final');
      expect(new Set([...before, ...after].map((e) => e.sessionId))).toEqual(new Set([id]));
      expect(broker.getSession(id).getEvents().at(-1).seq).toBe(total);
    });
  }

  it('a client resuming at the newest seq gets the headers at once, then the live events', async () => {
    // No heartbeats: they would deliver the headers anyway, a heartbeat interval later.
    const post = await postJson(base, '/sessions', { code: GATED, config: { heartbeatIntervalMs: 0 } });
    const id = post.headers.get('x-session-id');
    const session = broker.getSession(id);
    await lines(post).until(isProcessing);
    // Nothing more happens until the gate opens, so this fetch can only settle on headers.
    const newest = session.seq;
    const resumed = await fetch(`${base}/sessions/${id}/stream`, { headers: { 'Last-Event-ID': String(newest) } });
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get('x-session-id')).toBe(id);
    gate.open();
    const after = await lines(resumed).rest();
    expect(after[0].seq).toBe(newest + 1);
    expect(after.at(-1)).toMatchObject({ type: 'final', payload: { ok: true, result: 42 } });
  });

  it('a client that does not read never holds the session up', async () => {
    const code = "const s = 'x'.repeat(100000); for (let i = 0; i < 40; i++) await callTool('echo', {s}); return 'done'";
    const res = await postJson(base, '/sessions', { code, config: { maxToolCalls: 100 } });
    const id = res.headers.get('x-session-id');
    // Several MB of NDJSON are waiting unread in socket and response buffers.
    const session = broker.getSession(id);
    for (let i = 0; i < 2000 && !session.isTerminal(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(session.state).toBe('completed');
    const events = await lines(res).rest();
    expect(events.filter((e) => e.type === 'tool_call')).toHaveLength(40);
    expect(events.at(-1)).toMatchObject({ type: 'final', payload: { ok: true, result: 'done' } });
  });

  it('a client leaving a GET stream only unsubscribes: the session completes', async () => {
    const post = await postJson(base, '/sessions', { code: GATED });
    const id = post.headers.get('x-session-id');
    const postReader = lines(post);
    await postReader.until((e) => e.type === 'tool_call');

    const controller = new AbortController();
    const watcher = await fetch(`${base}/sessions/${id}/stream`, { signal: controller.signal });
    await lines(watcher).until((e) => e.type === 'tool_call');
    controller.abort();

    gate.open();
    const rest = await postReader.rest();
    expect(rest.at(-1)).toMatchObject({ type: 'final', payload: { ok: true, result: 42 } });
    expect(broker.getSession(id).state).toBe('completed');
  });

  it('applies POST body filters: include/exclude by type and by content', async () => {
    const code = "await callTool('add', {a: 1, b: 1}); return await callTool('echo', {s: 'hello'})";
    const typesOf = async (filter) => {
      const res = await postJson(base, '/sessions', { code, filter });
      expect(res.status).toBe(200);
      return (await lines(res).rest()).map((e) => (e.type === 'tool_call' ? `tool_call:${e.payload.toolName}` : e.type));
    };
    expect(await typesOf({ mode: 'include', rules: [{ types: { types: ['tool_call'] } }] })).toEqual([
      'session_init',
      'tool_call:add',
      'tool_call:echo',
      'final',
    ]);
    expect(
      await typesOf({ mode: 'exclude', rules: [{ types: { types: ['tool_progress', 'tool_result_applied'] } }] }),
    ).toEqual(['session_init', 'tool_call:add', 'tool_call:echo', 'final']);
    expect(
      await typesOf({
        mode: 'include',
        rules: [{ content: { patterns: [{ type: 'regex', pattern: '^ECHO$', field: 'payload.toolName', caseInsensitive: true }] } }],
      }),
    ).toEqual(['session_init', 'tool_call:echo', 'final']);
    expect(
      await typesOf({
        mode: 'include',
        rules: [{ types: { types: ['tool_call'] }, content: { patterns: [{ type: 'glob', pattern: '*"a":1*' }] } }],
      }),
    ).toEqual(['session_init', 'tool_call:add', 'final']);
  });

  it('applies ?filter= JSON to a replay, and rejects bad filters per route', async () => {
    const created = await postJson(base, '/sessions', { code: "return await callTool('add', {a: 1, b: 1})" });
    const id = created.headers.get('x-session-id');
    await created.text();
    const filter = encodeURIComponent(JSON.stringify({ mode: 'exclude', rules: [{ types: { types: ['tool_progress'] } }] }));
    const res = await fetch(`${base}/sessions/${id}/stream?filter=${filter}`);
    expect((await lines(res).rest()).map((e) => e.seq)).toEqual([1, 2, 5, 6]);

    for (const bad of ['%7Bnot-json', encodeURIComponent(JSON.stringify({ mode: 'include' }))]) {
      const r = await fetch(`${base}/sessions/${id}/stream?filter=${bad}`);
      expect(r.status).toBe(400);
      expect(await r.json()).toEqual({ code: 'INVALID_FILTER', message: 'Invalid filter configuration' });
    }
    const post = await postJson(base, '/sessions', { code: 'return 1', filter: { mode: 'include' } });
    expect(post.status).toBe(500);
    expect(await post.json()).toEqual({ code: 'SESSION_CREATE_ERROR', message: 'this.config.rules is not iterable' });
  });

  it('a catastrophic regex filter does not hang the server', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const pattern = '^(a+)+$';
    const code = "await callTool('echo', {s: 'a'.repeat(20000) + '!'}); return await callTool('echo', {s: 'aaa'})";
    const res = await postJson(base, '/sessions', {
      code,
      filter: {
        mode: 'exclude',
        rules: [{ types: { types: ['tool_call'] }, content: { patterns: [{ type: 'regex', pattern, field: 'payload.args.s' }] } }],
      },
    });
    expect(res.status).toBe(200);
    const events = await lines(res).rest();
    // The 20001-char argument is over the guard's limit, so it never matched and was sent;
    // the short one matched and was excluded.
    const calls = events.filter((e) => e.type === 'tool_call').map((e) => e.payload.args.s.length);
    expect(calls).toEqual([20001]);
    expect(events.at(-1)).toMatchObject({ type: 'final', payload: { ok: true, result: 3 } });
    expect(warn).toHaveBeenCalledWith(
      `[EventFilter] Potentially vulnerable regex pattern detected: ${pattern}. Input length will be limited to 10000 characters for protection.`,
    );
  });

  it('POST /sessions/:id/cancel cancels without removing the session', async () => {
    const post = await postJson(base, '/sessions', { code: GATED });
    const id = post.headers.get('x-session-id');
    const reader = lines(post);
    await reader.until((e) => e.type === 'tool_call');

    const cancel = await postJson(base, `/sessions/${id}/cancel`, { reason: 'user pressed stop' });
    expect(cancel.status).toBe(200);
    expect(corsHeadersOf(cancel)).toEqual(CORS_ANY);
    expect(await cancel.json()).toEqual({ success: true, sessionId: id });
    const info = await (await fetch(`${base}/sessions/${id}`)).json();
    expect(info.state).toBe('cancelled');

    gate.open();
    const rest = await reader.rest();
    expect(rest.at(-1)).toMatchObject({ type: 'final', payload: { ok: false, error: { code: 'SESSION_CANCELLED' } } });
    const replay = await fetch(`${base}/sessions/${id}/stream?from=${rest.at(-1).seq}`);
    expect((await lines(replay).rest()).map((e) => e.type)).toEqual(['final']);

    // Without a body at all, too.
    const bare = await fetch(`${base}/sessions/${id}/cancel`, { method: 'POST' });
    expect(bare.status).toBe(200);
  });

  it('echoes allowed origins with Vary and gives others no CORS headers', async () => {
    const app = express();
    app.use(express.json());
    registerExpressRoutes(app, createSessionHandler({ broker, allowedOrigins: ['https://app.example'] }));
    const { server: s2, base: b2 } = await listen(app);
    try {
      const ok = await fetch(b2 + '/sessions', { headers: { origin: 'https://app.example' } });
      expect(corsHeadersOf(ok)).toEqual({ ...CORS_ANY, 'access-control-allow-origin': 'https://app.example' });
      expect(ok.headers.get('vary')).toBe('Origin');

      const denied = await fetch(b2 + '/sessions', { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
      expect(denied.status).toBe(204);
      expect(corsHeadersOf(denied)).toEqual({});
      expect(denied.headers.get('vary')).toBeNull();

      const streamed = await postJson(b2, '/sessions', { code: 'return 1' }, { headers: { origin: 'https://app.example' } });
      expect(streamed.headers.get('access-control-allow-origin')).toBe('https://app.example');
      await streamed.text();
    } finally {
      await close(s2);
    }
  });

  it("logs a failing handler with 'Route handler error:' and answers 500 INTERNAL_ERROR", async () => {
    const boom = new Error('store exploded');
    const failing = {
      isDisposed: false,
      listSessions: () => [],
      getSession: () => undefined,
      createSession: () => {
        throw new Error('unused');
      },
      terminateSession: async () => {
        throw boom;
      },
    };
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const app = express();
    registerExpressRoutes(app, createSessionHandler({ broker: failing }));
    const { server: s2, base: b2 } = await listen(app);
    try {
      const res = await fetch(b2 + '/sessions/s_any', { method: 'DELETE' });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ code: 'INTERNAL_ERROR', message: 'Internal server error' });
      expect(error).toHaveBeenCalledWith('Route handler error:', boom);
    } finally {
      await close(s2);
    }
  });
});

describe.each(VERSIONS)('%s with createExpressRouter and the documented overload', (name, express) => {
  let broker;
  let gate;
  let server;
  let base;

  beforeEach(() => {
    broker = createBroker();
    broker.tool('add', { handler: ({ a, b }) => a + b });
    gate = gatedTool(broker);
  });

  afterEach(async () => {
    gate.open();
    if (server) await close(server);
    server = undefined;
    await broker.dispose();
  });

  // Express 4 is not what require('express') resolves to here, so it is passed in.
  const routerOptions = name === 'Express 4' ? { express: express4 } : {};

  it('createExpressRouter(broker) mounts a working router with JSON parsing built in', async () => {
    const app = express();
    app.use('/api/enclave', createExpressRouter(broker, routerOptions));
    app.use((req, res) => res.status(418).send('fell through'));
    ({ server, base } = await listen(app));
    const api = base + '/api/enclave';

    const post = await postJson(api, '/sessions', { code: GATED });
    expect(post.status).toBe(200);
    const id = post.headers.get('x-session-id');
    const reader = lines(post);
    await reader.until((e) => e.type === 'tool_call');

    const list = await (await fetch(api + '/sessions')).json();
    expect(list.sessions.map((s) => s.sessionId)).toEqual([id]);
    expect((await fetch(`${api}/sessions/${id}`)).status).toBe(200);
    expect((await fetch(`${api}/sessions/${id}/cancel`, { method: 'OPTIONS' })).status).toBe(204);

    const cancel = await postJson(api, `/sessions/${id}/cancel`, { reason: 'stop' });
    expect(await cancel.json()).toEqual({ success: true, sessionId: id });
    gate.open();
    expect((await reader.rest()).at(-1).payload.error.code).toBe('SESSION_CANCELLED');

    const malformed = await postJson(api, '/sessions', '{oops');
    expect(malformed.status).toBe(400);
    await malformed.text();
    const plain = await fetch(api + '/sessions', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(plain.status).toBe(400);
    expect(await plain.json()).toMatchObject({ code: 'INVALID_REQUEST' });

    // Requests outside the router's routes pass through untouched.
    expect((await fetch(api + '/other')).status).toBe(418);
    expect((await fetch(base + '/sessions')).status).toBe(418);
  });

  it('createExpressRouter(handler, {Router, json}) uses the given factory and parser', async () => {
    const handler = createSessionHandler({ broker, allowedOrigins: ['https://app.example'] });
    let parsed = 0;
    const json = express.json();
    const router = createExpressRouter(handler, {
      Router: express.Router,
      json: (req, res, next) => {
        parsed += 1;
        json(req, res, next);
      },
    });
    const app = express();
    app.use(router);
    ({ server, base } = await listen(app));
    const res = await postJson(base, '/sessions', { code: "return await callTool('add', {a: 3, b: 4})" }, {
      headers: { origin: 'https://app.example' },
    });
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect((await lines(res).rest()).at(-1).payload.result).toBe(7);
    expect(parsed).toBe(1);
  });

  it('registerExpressRoutes(app, broker, {prefix, middleware}) parses JSON and runs the middleware before the handler', async () => {
    const app = express();
    registerExpressRoutes(app, broker, { prefix: '/api/v1/', middleware: [auth], ...routerOptions });
    ({ server, base } = await listen(app));

    const denied = await fetch(base + '/api/v1/sessions');
    expect(denied.status).toBe(401);
    const authed = { authorization: 'Bearer ok' };
    const res = await postJson(base, '/api/v1/sessions', { code: "return await callTool('add', {a: 5, b: 5})" }, {
      headers: authed,
    });
    expect(res.status).toBe(200);
    expect((await lines(res).rest()).at(-1).payload.result).toBe(10);
    const list = await fetch(base + '/api/v1/sessions', { headers: authed });
    expect((await list.json()).total).toBe(1);
    expect((await fetch(base + '/sessions', { headers: authed })).status).toBe(404);
  });
});

describe('express adapter internals', () => {
  it('registers each route with router[method](path, handler), cancel included', async () => {
    const broker = createBroker();
    try {
      const calls = [];
      const router = Object.fromEntries(
        ['get', 'post', 'delete', 'options'].map((m) => [m, (...args) => calls.push([m, ...args])]),
      );
      registerExpressRoutes(router, createSessionHandler({ broker }));
      expect(calls.map(([m, path]) => `${m} ${path}`)).toEqual([
        'get /sessions',
        'post /sessions',
        'get /sessions/:sessionId',
        'get /sessions/:sessionId/stream',
        'delete /sessions/:sessionId',
        'options /sessions',
        'options /sessions/:sessionId',
        'options /sessions/:sessionId/stream',
        'post /sessions/:sessionId/cancel',
        'options /sessions/:sessionId/cancel',
      ]);
      for (const call of calls) {
        expect(call).toHaveLength(3);
        expect(typeof call[2]).toBe('function');
      }
      // A handler that already lists the cancel route does not get it twice.
      calls.length = 0;
      registerExpressRoutes(router, createSessionHandler({ broker, extraRoutes: true }));
      expect(calls).toHaveLength(10);
    } finally {
      await broker.dispose();
    }
  });

  it("aborts req.signal on the request's 'close' only if the socket is destroyed", async () => {
    const seen = [];
    const handler = {
      getRoutes: () => [
        {
          method: 'GET',
          path: '/x',
          handler: async (req) => {
            seen.push(req);
          },
        },
      ],
    };
    let route;
    registerExpressRoutes({ get: (path, fn) => (route = fn) }, handler);
    const fakeRes = {};
    const kept = fakeReq(false);
    route(kept, fakeRes);
    kept.emit('close');
    const dropped = fakeReq(true);
    route(dropped, fakeRes);
    dropped.emit('close');
    await Promise.resolve();
    expect(seen).toHaveLength(2);
    expect(seen[0].signal.aborted).toBe(false);
    expect(seen[1].signal.aborted).toBe(true);
    expect(Object.keys(seen[0])).toEqual(['method', 'path', 'params', 'query', 'body', 'headers', 'signal']);
  });

  it('rejects targets that are neither a SessionHandler nor a Broker', () => {
    expect(() => registerExpressRoutes({}, {})).toThrow('registerExpressRoutes needs a SessionHandler or a Broker');
    expect(() => createExpressRouter(null)).toThrow('createExpressRouter needs a SessionHandler or a Broker');
  });
});
