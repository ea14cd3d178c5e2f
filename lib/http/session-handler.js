// SessionHandler: the original's framework-agnostic HTTP API (b/http/session-handler.ts).
//
// Requests and responses are duck-typed: BrokerRequest {method, path, params, query, body,
// headers, signal?} and BrokerResponse {status(c) → this, json(d), setHeader(n, v) → this,
// write(s), end(), flush?()}. Routes, status codes, JSON bodies and headers are the
// original's. Added on top (C36 in docs/compatibility.md), because the original's own client relies on
// them: POST /sessions/:sessionId/cancel, and the replay aliases `?from=` and
// `Last-Event-ID` (used only when `fromSeq` is absent). getRoutes() lists the cancel route
// only when the handler is built with `extraRoutes: true`, so the route list stays the
// original's by default.
//
// Tenancy (as on the listen() server, see README "HTTP"): given `resolvePrincipal(req)`,
// every request acts as the principal it returns (a string id, or an object with a string
// `id`; anything else is a 401). Sessions it creates are its own; `GET /sessions` lists
// only those, and every `:sessionId` route answers 404 for anyone else unless the optional
// `authorize(principal, action, session)` returns true. Without a resolver the handler is
// the original's, except that a `sessionId` already in use is a 409 (never a replacement).
//
// On a broker with `redis` (shared state), the routes see every broker's sessions: lists
// and lookups go to the shared registry, a stream of a session another broker runs follows
// its shared log, cancel and DELETE reach the broker running it, and the principal a session
// was created for is kept with it, so every broker applies the same tenancy.
'use strict';

const { createEventFilter } = require('../event-filter');
const { INTERNALS } = require('../broker');
const { SESSION_OWNER } = require('../config');

const CORS_METHODS = 'GET, POST, DELETE, OPTIONS';
const CORS_HEADERS = 'Content-Type, Accept, Last-Event-ID';

// `?fromSeq=` parsing as the original: decimal prefix, NaN or negative → 0.
function parseSeq(raw) {
  const parsed = parseInt(raw, 10);
  return Number.isFinite(parsed) && parsed >= 0 ? parsed : 0;
}

function headerValue(headers, name) {
  if (headers === null || typeof headers !== 'object') return undefined;
  if (headers[name] !== undefined) return headers[name];
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === name) return headers[key];
  }
  return undefined;
}

// The principal of every request when the handler has no resolver (tenancy off).
const NO_TENANCY = Symbol('noTenancy');

function principalId(principal) {
  if (typeof principal === 'string') return principal;
  if (principal !== null && typeof principal === 'object' && typeof principal.id === 'string') return principal.id;
  return undefined;
}

// A principal's key in the shared registry (the core's `user:<JSON id>`).
const principalKey = (principal) => `user:${JSON.stringify(principalId(principal))}`;

// A session of the shared registry that this process does not hold.
class SharedSession {
  constructor(info) {
    this.info = info;
  }

  get sessionId() {
    return this.info.sessionId;
  }
}

// An answer of the broker running a shared session, as the route's response (true when done).
function commandAnswered(handler, res, sessionId, answer) {
  if (answer.status === 'done') return true;
  if (answer.status === 'notFound') handler.sendError(res, 404, 'NOT_FOUND', `Session ${sessionId} not found`);
  else if (answer.status === 'invalid') handler.sendError(res, 409, 'INVALID_STATE', answer.message);
  else handler.sendError(res, 503, 'BROKER_UNAVAILABLE', answer.message);
  return false;
}

class SessionHandler {
  #extraRoutes;
  #resolvePrincipal;
  #authorize;
  // BrokerSession → the principal that created it through this handler.
  #owners = new WeakMap();

  constructor(config) {
    this.broker = config.broker;
    this.cors = config.cors ?? true;
    this.allowedOrigins = config.allowedOrigins ?? ['*'];
    this.#extraRoutes = config.extraRoutes === true;
    for (const name of ['resolvePrincipal', 'authorize']) {
      if (config[name] !== undefined && typeof config[name] !== 'function') {
        throw new TypeError(`SessionHandler ${name} must be a function`);
      }
    }
    this.#resolvePrincipal = config.resolvePrincipal;
    this.#authorize = config.authorize;
  }

  // The request's principal, NO_TENANCY without a resolver, or undefined once a 401 is sent.
  async #caller(req, res) {
    if (this.#resolvePrincipal === undefined) return NO_TENANCY;
    let principal;
    try {
      principal = await this.#resolvePrincipal(req);
    } catch {
      principal = undefined;
    }
    const id = principalId(principal);
    if (id === undefined || id === '') {
      this.sendError(res, 401, 'UNAUTHORIZED', 'No principal for this request');
      return undefined;
    }
    return principal;
  }

  // The broker's shared state (its `redis` option), if any.
  #shared() {
    const internals = this.broker !== null && typeof this.broker === 'object' ? this.broker[INTERNALS] : undefined;
    return internals === undefined ? undefined : internals.shared;
  }

  // Whether `principal` may do `action` ('list', 'read', 'stream', 'cancel', 'delete') to
  // `session` (a BrokerSession, or a SharedSession): its owner may; anyone else only if
  // `authorize` returns true.
  async #mayReach(principal, session, action) {
    if (principal === NO_TENANCY) return true;
    const shared = session instanceof SharedSession ? session.info : undefined;
    const owner = shared === undefined ? this.#owners.get(session) : shared.owner.type === 'user' ? shared.owner.userId : undefined;
    if (owner !== undefined && principalId(owner) === principalId(principal)) return true;
    if (this.#authorize === undefined) return false;
    const source = shared ?? session;
    const info = {
      sessionId: source.sessionId,
      state: source.state,
      createdAt: source.createdAt,
      expiresAt: source.expiresAt,
      owner: owner ?? null,
    };
    try {
      return (await this.#authorize(principal, action, info)) === true;
    } catch {
      return false;
    }
  }

  getRoutes() {
    const routes = [
      { method: 'GET', path: '/sessions', handler: this.listSessions.bind(this) },
      { method: 'POST', path: '/sessions', handler: this.createSession.bind(this) },
      { method: 'GET', path: '/sessions/:sessionId', handler: this.getSession.bind(this) },
      { method: 'GET', path: '/sessions/:sessionId/stream', handler: this.streamSession.bind(this) },
      { method: 'DELETE', path: '/sessions/:sessionId', handler: this.terminateSession.bind(this) },
      { method: 'OPTIONS', path: '/sessions', handler: this.handleCors.bind(this) },
      { method: 'OPTIONS', path: '/sessions/:sessionId', handler: this.handleCors.bind(this) },
      { method: 'OPTIONS', path: '/sessions/:sessionId/stream', handler: this.handleCors.bind(this) },
    ];
    return this.#extraRoutes ? routes.concat(this.getExtraRoutes()) : routes;
  }

  // The routes the original lacks (C36 in docs/compatibility.md); the Express helpers always register them.
  getExtraRoutes() {
    return [
      { method: 'POST', path: '/sessions/:sessionId/cancel', handler: this.cancelSession.bind(this) },
      { method: 'OPTIONS', path: '/sessions/:sessionId/cancel', handler: this.handleCors.bind(this) },
    ];
  }

  addCorsHeaders(req, res) {
    if (!this.cors) return;
    const origin = req.headers['origin'];
    if (this.allowedOrigins.includes('*')) {
      res.setHeader('Access-Control-Allow-Origin', '*');
    } else if (origin && this.allowedOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
    } else {
      // A disallowed origin gets no CORS headers at all.
      return;
    }
    res.setHeader('Access-Control-Allow-Methods', CORS_METHODS);
    res.setHeader('Access-Control-Allow-Headers', CORS_HEADERS);
    res.setHeader('Access-Control-Max-Age', '86400');
  }

  async handleCors(req, res) {
    this.addCorsHeaders(req, res);
    res.status(204).end();
  }

  async listSessions(req, res) {
    this.addCorsHeaders(req, res);
    const principal = await this.#caller(req, res);
    if (principal === undefined) return;
    try {
      const shared = this.#shared();
      if (shared !== undefined) {
        await this.#listShared(shared, principal, res);
        return;
      }
      let sessions = this.broker.listSessions();
      if (principal !== NO_TENANCY) {
        const visible = await Promise.all(
          sessions.map((info) => {
            const session = this.broker.getSession(info.sessionId);
            return session !== undefined && this.#mayReach(principal, session, 'list');
          }),
        );
        sessions = sessions.filter((_, i) => visible[i]);
      }
      res.status(200).json({
        sessions: sessions.map((info) => this.sessionInfoToResponse(info)),
        total: sessions.length,
      });
    } catch {
      this.sendError(res, 500, 'INTERNAL_ERROR', 'Failed to list sessions');
    }
  }

  // GET /sessions on a broker with shared state: every broker's sessions of the caller.
  async #listShared(shared, principal, res) {
    const everyone = principal === NO_TENANCY || this.#authorize !== undefined;
    let infos = await shared.list(everyone ? undefined : principalKey(principal));
    if (principal !== NO_TENANCY) {
      const visible = await Promise.all(infos.map((info) => this.#mayReach(principal, new SharedSession(info), 'list')));
      infos = infos.filter((_, i) => visible[i]);
    }
    res.status(200).json({ sessions: infos.map((info) => this.sessionInfoToResponse(info)), total: infos.length });
  }

  async createSession(req, res) {
    this.addCorsHeaders(req, res);
    const principal = await this.#caller(req, res);
    if (principal === undefined) return;
    const body = req.body;
    if (!body || typeof body.code !== 'string') {
      this.sendError(res, 400, 'INVALID_REQUEST', 'Missing or invalid "code" field');
      return;
    }
    if (this.broker.isDisposed) {
      this.sendError(res, 503, 'SERVICE_UNAVAILABLE', 'Broker is disposed');
      return;
    }
    // A client-chosen id never replaces a session (the original's replace-on-duplicate
    // stays on the embedder's SessionManager API).
    const shared = this.#shared();
    const exists = async (id) => this.broker.getSession(id) !== undefined || (shared !== undefined && (await shared.find(id)) !== null);
    if (body.sessionId !== undefined && (await exists(body.sessionId))) {
      this.sendError(res, 409, 'SESSION_EXISTS', `Session ${body.sessionId} already exists`);
      return;
    }
    try {
      // Only the keys the client gave; none at all means `limits: undefined`, which
      // replaces the broker's limits with the defaults (Q1 in docs/compatibility.md).
      const limits = {};
      if (body.config?.maxExecutionMs !== undefined) limits['sessionTtlMs'] = body.config.maxExecutionMs;
      if (body.config?.maxToolCalls !== undefined) limits['maxToolCalls'] = body.config.maxToolCalls;
      if (body.config?.heartbeatIntervalMs !== undefined) limits['heartbeatIntervalMs'] = body.config.heartbeatIntervalMs;

      let eventFilter;
      if (body.filter) eventFilter = createEventFilter({ config: body.filter });

      const session = this.broker.createSession({
        sessionId: body.sessionId,
        limits: Object.keys(limits).length > 0 ? limits : undefined,
        ...(principal === NO_TENANCY ? {} : { [SESSION_OWNER]: principalId(principal) }),
      });
      if (principal !== NO_TENANCY) this.#owners.set(session, principal);

      res.setHeader('Content-Type', 'application/x-ndjson');
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('Connection', 'keep-alive');
      res.setHeader('X-Session-ID', session.sessionId);

      const unsubscribe = session.onEvent((event) => {
        if (eventFilter && !eventFilter.shouldSend(event)) return;
        this.writeEvent(res, event);
      });

      let cleanedUp = false;
      const cleanup = () => {
        if (cleanedUp) return;
        cleanedUp = true;
        unsubscribe();
        if (!session.isTerminal()) {
          session.cancel('Client disconnected').catch(() => {});
        }
      };
      if (req.signal) req.signal.addEventListener('abort', cleanup, { once: true });

      try {
        await session.execute(body.code);
      } catch {
        // Failures are reported through the stream's final event.
      } finally {
        cleanup();
        res.end();
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : 'Unknown error';
      this.sendError(res, 500, 'SESSION_CREATE_ERROR', message);
    }
  }

  // The route's `:sessionId`, or undefined once a 400 has been sent.
  #requireSessionId(req, res) {
    const sessionId = req.params['sessionId'];
    if (!sessionId) {
      this.sendError(res, 400, 'INVALID_REQUEST', 'Missing sessionId');
      return undefined;
    }
    return sessionId;
  }

  #sendNotFound(res, sessionId) {
    this.sendError(res, 404, 'NOT_FOUND', `Session ${sessionId} not found`);
  }

  // The route's session if the caller may do `action` to it, or undefined once a 400, 401
  // or 404 has been sent (a session the caller may not reach is answered as missing). With
  // shared state, a session another broker runs is a SharedSession.
  async #requireSession(req, res, action) {
    const principal = await this.#caller(req, res);
    if (principal === undefined) return undefined;
    const sessionId = this.#requireSessionId(req, res);
    if (sessionId === undefined) return undefined;
    const session = this.broker.getSession(sessionId) ?? (await this.#findShared(sessionId));
    if (!session || !(await this.#mayReach(principal, session, action))) {
      this.#sendNotFound(res, sessionId);
      return undefined;
    }
    return session;
  }

  // The shared registry's entry of a session this process does not hold, if any.
  async #findShared(sessionId) {
    const shared = this.#shared();
    if (shared === undefined) return undefined;
    const info = await shared.find(sessionId);
    return info === null || info.local ? undefined : new SharedSession(info);
  }

  async getSession(req, res) {
    this.addCorsHeaders(req, res);
    const session = await this.#requireSession(req, res, 'read');
    if (session === undefined) return;
    if (session instanceof SharedSession) {
      const { info } = session;
      res.status(200).json({
        sessionId: info.sessionId,
        state: info.state,
        createdAt: info.createdAt,
        expiresAt: info.expiresAt,
        stats: { duration: Date.now() - info.createdAt, toolCallCount: info.toolCallCount },
      });
      return;
    }
    res.status(200).json(this.sessionToInfo(session));
  }

  // First seq to send: `fromSeq` as the original; otherwise the client's `from` (C36 in docs/compatibility.md), or
  // an EventSource-style Last-Event-ID (the last seq the client has, so the next one).
  resolveFromSeq(req) {
    const query = req.query ?? {};
    if (query['fromSeq'] !== undefined && query['fromSeq'] !== null) return parseSeq(query['fromSeq']);
    if (query['from'] !== undefined && query['from'] !== null) return parseSeq(query['from']);
    const lastEventId = headerValue(req.headers, 'last-event-id');
    if (lastEventId !== undefined && lastEventId !== null) {
      const last = parseInt(lastEventId, 10);
      if (Number.isFinite(last) && last >= 0) return last + 1;
    }
    return 0;
  }

  async streamSession(req, res) {
    this.addCorsHeaders(req, res);
    const session = await this.#requireSession(req, res, 'stream');
    if (session === undefined) return;

    const fromSeq = this.resolveFromSeq(req);

    let eventFilter;
    if (req.query['filter']) {
      try {
        const filterConfig = JSON.parse(req.query['filter']);
        eventFilter = createEventFilter({ config: filterConfig });
      } catch {
        this.sendError(res, 400, 'INVALID_FILTER', 'Invalid filter configuration');
        return;
      }
    }

    res.setHeader('Content-Type', 'application/x-ndjson');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Session-ID', session.sessionId);

    if (session instanceof SharedSession) {
      this.#streamShared(req, res, session, fromSeq, eventFilter);
      return;
    }

    // Subscribing before reading the history leaves no window in which an event could be
    // in neither; anything both return is dropped by seq.
    let lastSeq = 0;
    let wroteAny = false;
    let ended = false;
    let unsubscribe;
    const finish = () => {
      if (ended) return;
      ended = true;
      unsubscribe();
      res.end();
    };
    const deliver = (event) => {
      if (ended || event.seq <= lastSeq) return;
      lastSeq = event.seq;
      if (event.seq >= fromSeq && !(eventFilter && !eventFilter.shouldSend(event))) {
        this.writeEvent(res, event);
        wroteAny = true;
      }
      // The stream ends at `final` even when the filter dropped it.
      if (event.type === 'final') finish();
    };
    const early = [];
    let replaying = true;
    unsubscribe = session.onEvent((event) => {
      if (replaying) {
        early.push(event);
        return;
      }
      try {
        deliver(event);
      } finally {
        // A filter that throws must not keep the stream open past the session's end.
        if (event.type === 'final') finish();
      }
    });

    try {
      for (const event of session.getEvents()) deliver(event);
      replaying = false;
      for (const event of early) deliver(event);
    } catch (error) {
      // As the original, a failing replay rejects (the adapter answers 500); the
      // subscription must not outlive it.
      ended = true;
      unsubscribe();
      throw error;
    }
    if (ended) return;

    if (session.isTerminal()) {
      finish();
      return;
    }
    // Nothing replayed (a client resuming at the newest seq): send the headers now, so it
    // is not left waiting for them until the next event, up to a heartbeat away.
    if (!wroteAny && res.flush) res.flush();

    if (req.signal) {
      req.signal.addEventListener(
        'abort',
        () => {
          ended = true;
          unsubscribe();
        },
        { once: true },
      );
    }
  }

  // A session another broker runs: its shared log from `fromSeq`, then live, to `final`.
  #streamShared(req, res, session, fromSeq, eventFilter) {
    let ended = false;
    const stop = this.#shared().follow(
      session.sessionId,
      Math.max(0, fromSeq - 1),
      (events) => {
        for (const event of events) {
          if (!(eventFilter && !eventFilter.shouldSend(event))) this.writeEvent(res, event);
        }
      },
      () => {
        ended = true;
        res.end();
      },
    );
    if (res.flush) res.flush();
    if (req.signal) {
      req.signal.addEventListener(
        'abort',
        () => {
          if (!ended) stop();
        },
        { once: true },
      );
    }
  }

  async terminateSession(req, res) {
    this.addCorsHeaders(req, res);
    let target;
    if (this.#resolvePrincipal !== undefined || this.#shared() !== undefined) {
      target = await this.#requireSession(req, res, 'delete');
      if (target === undefined) return;
    }
    const sessionId = this.#requireSessionId(req, res);
    if (sessionId === undefined) return;
    if (target instanceof SharedSession) {
      const answer = await this.#shared().command(sessionId, { op: 'delete' });
      if (commandAnswered(this, res, sessionId, answer)) res.status(200).json({ success: true, sessionId });
      return;
    }
    const success = await this.broker.terminateSession(sessionId);
    if (!success) {
      this.#sendNotFound(res, sessionId);
      return;
    }
    res.status(200).json({ success: true, sessionId });
  }

  // POST /sessions/:sessionId/cancel {reason?}: unlike DELETE, the session stays in the
  // broker, so its stream can still be replayed to the end.
  async cancelSession(req, res) {
    this.addCorsHeaders(req, res);
    const session = await this.#requireSession(req, res, 'cancel');
    if (session === undefined) return;
    const reason = req.body && typeof req.body.reason === 'string' ? req.body.reason : undefined;
    if (session instanceof SharedSession) {
      const answer = await this.#shared().command(session.sessionId, { op: 'cancel', reason });
      if (commandAnswered(this, res, session.sessionId, answer)) res.status(200).json({ success: true, sessionId: session.sessionId });
      return;
    }
    await session.cancel(reason);
    res.status(200).json({ success: true, sessionId: session.sessionId });
  }

  sessionToInfo(session) {
    const stats = session.getStats();
    return {
      sessionId: session.sessionId,
      state: session.state,
      createdAt: session.createdAt,
      expiresAt: session.expiresAt,
      stats: { duration: stats.duration, toolCallCount: stats.toolCallCount },
    };
  }

  sessionInfoToResponse(info) {
    return {
      sessionId: info.sessionId,
      state: info.state,
      createdAt: info.createdAt,
      expiresAt: info.expiresAt,
      // SessionInfo has no tool call count; the original reports 0 (Q11 in docs/compatibility.md).
      stats: { duration: Date.now() - info.createdAt, toolCallCount: 0 },
    };
  }

  // One event per line, flushed at once; write() is never awaited, so a slow client only
  // buffers in its own response and never holds up the session.
  writeEvent(res, event) {
    res.write(JSON.stringify(event) + '\n');
    if (res.flush) res.flush();
  }

  sendError(res, status, code, message) {
    res.status(status).json({ code, message });
  }
}

function createSessionHandler(config) {
  return new SessionHandler(config);
}

module.exports = { SessionHandler, createSessionHandler };
