// One table of HTTP requests (bad bodies, unknown routes, CORS preflights, replay starts,
// the session-info shape, filters, refusals) through the listen() server and the Express
// SessionHandler. Both decide by the same rules (crates/core/src/http/rules.rs), so they must
// answer alike. Where they differ by contract, the row says both answers and why: the
// listen() server is a server of its own (it answers every path, caps what clients send and
// refuses at once what could only fail later), while the SessionHandler is the original's
// handler mounted in the embedder's Express app, which answers what it does not route.
import { once } from 'node:events';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EnclaveBroker, createBroker, createSessionHandler, registerExpressRoutes } from '../index.mjs';
import { ndjsonLines } from './helpers/index.mjs';

const ORIGIN = 'https://app.example';
const CODE = "console.log('a'); console.log('b'); console.log('c'); return 1";
// Its events by seq: 1 session_init, 2-4 stdout, 5 final. No heartbeats: config turns them off.
const QUIET = { heartbeatIntervalMs: 0 };
const CORS_NAMES = [
  'access-control-allow-origin',
  'vary',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-max-age',
];
const CORS = {
  'access-control-allow-origin': ORIGIN,
  vary: 'Origin',
  'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
  'access-control-allow-headers': 'Content-Type, Accept, Last-Event-ID',
  'access-control-max-age': '86400',
};
// One difference on every row: the listen() server authenticates requests itself, so its
// CORS headers also let browsers send its credential headers.
const SERVER_CORS = { ...CORS, 'access-control-allow-headers': 'Content-Type, Accept, Last-Event-ID, Authorization, X-API-Key' };
const SESSION_INFO = {
  sessionId: 's_done',
  state: 'completed',
  createdAt: 'number',
  expiresAt: 'number',
  stats: { duration: 'number', toolCallCount: 0 },
};
const error = (code, message) => ({ code, message });
const ok = (body) => ({ status: 200, body, cors: CORS });
const refused = (status, code, message) => ({ status, body: error(code, message), cors: CORS });
const stream = (seqs) => ({ status: 200, body: { seqs }, cors: CORS });
const only = (pattern) => ({ mode: 'include', rules: [{ content: { patterns: [{ type: 'exact', pattern }] } }] });
const THROWING_FILTER = { mode: 'include', rules: 'not-an-array' };
const bigFilter = { mode: 'include', rules: [{ types: { types: ['stdout', 'x'.repeat(17 * 1024)] } }] };

// [what, request, answer] or [what, request, {listen, handler, why}].
const CASES = [
  ['list: the session-info shape, toolCallCount 0', { path: '/sessions' }, ok({ sessions: [SESSION_INFO], total: 1 })],
  ['read: the session-info shape', { path: '/sessions/s_done' }, ok(SESSION_INFO)],
  ['read: an unknown session', { path: '/sessions/s_nope' }, refused(404, 'NOT_FOUND', 'Session s_nope not found')],
  ['read: a percent-escaped id', { path: '/sessions/s%5Fdone' }, ok(SESSION_INFO)],
  ['CORS preflight', { method: 'OPTIONS', path: '/sessions' }, { status: 204, body: undefined, cors: CORS }],
  ['CORS preflight of a stream', { method: 'OPTIONS', path: '/sessions/s_done/stream' }, { status: 204, body: undefined, cors: CORS }],
  ['CORS preflight of the cancel route', { method: 'OPTIONS', path: '/sessions/s_done/cancel' }, { status: 204, body: undefined, cors: CORS }],
  ['CORS: a disallowed origin gets no CORS headers', { path: '/sessions/s_nope', origin: 'https://evil.example' }, { status: 404, body: error('NOT_FOUND', 'Session s_nope not found'), cors: {} }],
  ['create: no code', { method: 'POST', path: '/sessions', body: {} }, refused(400, 'INVALID_REQUEST', 'Missing or invalid "code" field')],
  ['create: code not a string', { method: 'POST', path: '/sessions', body: { code: 5 } }, refused(400, 'INVALID_REQUEST', 'Missing or invalid "code" field')],
  ['create: a body that is not an object', { method: 'POST', path: '/sessions', body: ['return 1'] }, { listen: refused(400, 'INVALID_REQUEST', 'Request body must be a JSON object'), handler: refused(400, 'INVALID_REQUEST', 'Missing or invalid "code" field'), why: 'the listen() server reads the body itself; Express hands the handler any JSON' }],
  ['create: a session id in use', { method: 'POST', path: '/sessions', body: { code: CODE, sessionId: 's_done' } }, refused(409, 'SESSION_EXISTS', 'Session s_done already exists')],
  ['create: a filter the EventFilter constructor refuses', { method: 'POST', path: '/sessions', body: { code: CODE, filter: { mode: 'include' } } }, refused(500, 'SESSION_CREATE_ERROR', 'this.config.rules is not iterable')],
  ['create: a falsy filter is none', { method: 'POST', path: '/sessions', body: { code: CODE, config: QUIET, filter: 0 } }, stream([1, 2, 3, 4, 5])],
  ['create: a filter', { method: 'POST', path: '/sessions', body: { code: CODE, sessionId: 's_gone', config: QUIET, filter: { mode: 'exclude', rules: [{ types: { types: ['stdout'] } }] } } }, stream([1, 5])],
  ['create: a filter past 16 KiB', { method: 'POST', path: '/sessions', body: { code: CODE, config: QUIET, filter: bigFilter } }, { listen: refused(400, 'FILTER_TOO_LARGE', `filter is ${JSON.stringify(bigFilter).length} bytes of JSON; the limit is 16384`), handler: stream([1, 2, 3, 4, 5]), why: 'the server caps what clients send; the original takes any filter' }],
  ['create: a filter that throws on every event', { method: 'POST', path: '/sessions', body: { code: CODE, config: QUIET, filter: THROWING_FILTER } }, { listen: refused(500, 'SESSION_CREATE_ERROR', 'this.config.rules.some is not a function'), handler: stream([1, 5]), why: "the original's listener throws on every event but those alwaysAllow lets through; the server refuses at once" }],
  ['create: a filter with a lone surrogate', { method: 'POST', path: '/sessions', body: { code: CODE, filter: only('\ud800') } }, { listen: refused(400, 'INVALID_REQUEST', 'Malformed JSON body'), handler: refused(400, 'INVALID_REQUEST', '"filter" is not readable JSON: unexpected end of hex escape at line 1 column 85'), why: 'JSON the core cannot read: the server refuses the whole body, the handler (given it by Express) the filter' }],
  ['stream: from the start', { path: '/sessions/s_done/stream' }, stream([1, 2, 3, 4, 5])],
  ['stream: fromSeq, inclusive', { path: '/sessions/s_done/stream?fromSeq=3' }, stream([3, 4, 5])],
  ['stream: fromSeq read as parseInt', { path: '/sessions/s_done/stream?fromSeq=4abc' }, stream([4, 5])],
  ['stream: a negative fromSeq is the start', { path: '/sessions/s_done/stream?fromSeq=-3' }, stream([1, 2, 3, 4, 5])],
  ['stream: fromSeq not a number is the start, even with from', { path: '/sessions/s_done/stream?fromSeq=x&from=4' }, stream([1, 2, 3, 4, 5])],
  ['stream: from, inclusive', { path: '/sessions/s_done/stream?from=4' }, stream([4, 5])],
  ['stream: Last-Event-ID is the last seen', { path: '/sessions/s_done/stream', headers: { 'last-event-id': '3' } }, stream([4, 5])],
  ['stream: from wins over Last-Event-ID', { path: '/sessions/s_done/stream?from=2', headers: { 'last-event-id': '3' } }, stream([2, 3, 4, 5])],
  ['stream: a Last-Event-ID that is not a number', { path: '/sessions/s_done/stream', headers: { 'last-event-id': 'x' } }, stream([1, 2, 3, 4, 5])],
  ['stream: past the end', { path: '/sessions/s_done/stream?fromSeq=99' }, stream([])],
  ['stream: a filter', { path: `/sessions/s_done/stream?filter=${encodeURIComponent(JSON.stringify({ mode: 'include', rules: [{ types: { types: ['stdout'] } }] }))}` }, stream([1, 2, 3, 4, 5])],
  ['stream: a filter that is not JSON', { path: '/sessions/s_done/stream?filter=%7Bnot' }, refused(400, 'INVALID_FILTER', 'Invalid filter configuration')],
  ['stream: a filter the constructor refuses', { path: `/sessions/s_done/stream?filter=${encodeURIComponent('{"mode":"include"}')}` }, refused(400, 'INVALID_FILTER', 'Invalid filter configuration')],
  ['stream: a null filter', { path: '/sessions/s_done/stream?filter=null' }, refused(400, 'INVALID_FILTER', 'Invalid filter configuration')],
  ['stream: a filter that throws on every event', { path: `/sessions/s_done/stream?filter=${encodeURIComponent(JSON.stringify(THROWING_FILTER))}` }, { listen: refused(400, 'INVALID_FILTER', 'Invalid filter configuration'), handler: stream([1]), why: "the original's replay throws at the first event alwaysAllow does not let through (the stream ends there); the server refuses at once" }],
  ['stream: an unknown session', { path: '/sessions/s_nope/stream' }, refused(404, 'NOT_FOUND', 'Session s_nope not found')],
  ['cancel: an unknown session', { method: 'POST', path: '/sessions/s_nope/cancel', body: {} }, refused(404, 'NOT_FOUND', 'Session s_nope not found')],
  ['cancel: a finished session', { method: 'POST', path: '/sessions/s_done/cancel', body: {} }, ok({ success: true, sessionId: 's_done' })],
  ['cancel: a reason that is not a string', { method: 'POST', path: '/sessions/s_done/cancel', body: { reason: 5 } }, { listen: refused(400, 'INVALID_REQUEST', '"reason" must be a string'), handler: ok({ success: true, sessionId: 's_done' }), why: 'the original ignores a reason that is not a string; the server refuses it' }],
  ['delete', { method: 'DELETE', path: '/sessions/s_gone' }, ok({ success: true, sessionId: 's_gone' })],
  ['delete: again', { method: 'DELETE', path: '/sessions/s_gone' }, refused(404, 'NOT_FOUND', 'Session s_gone not found')],
  ['an unknown route', { path: '/nope' }, { listen: refused(404, 'NOT_FOUND', 'Route not found: GET /nope'), handler: { status: 404, body: 'not JSON', cors: {} }, why: "the handler routes only its own paths; the embedder's app answers the rest" }],
  ['a route with another method', { method: 'PUT', path: '/sessions' }, { listen: refused(405, 'METHOD_NOT_ALLOWED', 'PUT is not supported on /sessions'), handler: { status: 404, body: 'not JSON', cors: {} }, why: 'as above' }],
];

const servers = {};

// The answer to `request`, with the values that differ per run (times) shown by type.
async function ask(base, { method = 'GET', path, headers = {}, body, origin = ORIGIN }) {
  const sent = { ...headers, origin };
  if (body !== undefined) sent['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  let shown;
  if (type.startsWith('application/x-ndjson')) shown = { seqs: ndjsonLines(text).map((e) => e.seq) };
  else if (type.startsWith('application/json')) shown = byType(JSON.parse(text));
  else if (text !== '') shown = 'not JSON';
  const cors = {};
  for (const name of CORS_NAMES) {
    const value = res.headers.get(name);
    if (value !== null) cors[name] = value;
  }
  return { status: res.status, body: shown, cors };
}

// `answer` as the listen() server gives it: its own CORS set where the handler gives CORS.
const withServerCors = (answer) => (answer.cors === CORS ? { ...answer, cors: SERVER_CORS } : answer);

function byType(value) {
  if (Array.isArray(value)) return value.map(byType);
  if (value === null || typeof value !== 'object') return value;
  const shown = {};
  for (const [key, inner] of Object.entries(value)) {
    shown[key] = ['createdAt', 'expiresAt', 'duration'].includes(key) ? typeof inner : byType(inner);
  }
  return shown;
}

beforeAll(async () => {
  const server = new EnclaveBroker({ allowedOrigins: [ORIGIN], limits: QUIET });
  await server.listen(0, '127.0.0.1');
  servers.listen = { base: `http://127.0.0.1:${server.port}`, close: () => server.close({ timeout: 0 }) };

  const broker = createBroker({ limits: QUIET });
  const app = express();
  app.use(express.json());
  registerExpressRoutes(app, createSessionHandler({ broker, allowedOrigins: [ORIGIN] }));
  const http = app.listen(0, '127.0.0.1');
  await once(http, 'listening');
  servers.handler = {
    base: `http://127.0.0.1:${http.address().port}`,
    close: async () => {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await broker.dispose();
    },
  };

  for (const { base } of Object.values(servers)) {
    const res = await fetch(`${base}/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: CODE, sessionId: 's_done', config: QUIET }),
    });
    expect(ndjsonLines(await res.text()).map((e) => e.type)).toEqual(['session_init', 'stdout', 'stdout', 'stdout', 'final']);
  }
});

afterAll(async () => {
  for (const server of Object.values(servers)) await server.close();
});

describe('HTTP requests', () => {
  it.each(CASES)('%s: the listen() server and the SessionHandler answer as the table says', async (_what, request, expected) => {
    // The Express adapter logs a handler that rejects (the throwing filter's replay).
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    let answers;
    try {
      answers = {
        listen: await ask(servers.listen.base, request),
        handler: await ask(servers.handler.base, request),
      };
    } finally {
      logged.mockRestore();
    }
    const differs = expected.why !== undefined;
    expect(answers).toEqual({
      listen: withServerCors(differs ? expected.listen : expected),
      handler: differs ? expected.handler : expected,
    });
  });
});

// The Access-Control-Allow-Origin `handler` gives a request from `origin`.
function corsOf(handler, origin) {
  const headers = {};
  handler.addCorsHeaders({ headers: origin === undefined ? {} : { origin } }, { setHeader: (name, value) => (headers[name] = value) });
  return headers['Access-Control-Allow-Origin'];
}

describe("the SessionHandler's CORS answers", () => {

  it('follow allowedOrigins and cors when they are changed after construction', async () => {
    const broker = createBroker();
    try {
      const handler = createSessionHandler({ broker, allowedOrigins: [ORIGIN] });
      expect(corsOf(handler, ORIGIN)).toBe(ORIGIN);
      expect(corsOf(handler, 'https://other.example')).toBeUndefined();
      handler.allowedOrigins = ['https://other.example'];
      expect(corsOf(handler, ORIGIN)).toBeUndefined();
      expect(corsOf(handler, 'https://other.example')).toBe('https://other.example');
      handler.allowedOrigins.push(ORIGIN);
      expect(corsOf(handler, ORIGIN)).toBe(ORIGIN);
      handler.allowedOrigins = ['*'];
      expect(corsOf(handler, undefined)).toBe('*');
      handler.cors = false;
      expect(corsOf(handler, ORIGIN)).toBeUndefined();
    } finally {
      await broker.dispose();
    }
  });

  it('stay right for many distinct origins (the remembered answers are bounded)', async () => {
    const broker = createBroker();
    try {
      const handler = createSessionHandler({ broker, allowedOrigins: ['https://o7.example'] });
      for (let i = 0; i < 200; i++) {
        const origin = `https://o${i}.example`;
        expect(corsOf(handler, origin)).toBe(i === 7 ? origin : undefined);
      }
      expect(corsOf(handler, 'https://o7.example')).toBe('https://o7.example');
    } finally {
      await broker.dispose();
    }
  });
});
