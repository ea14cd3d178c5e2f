// SessionHandler: the original's framework-agnostic HTTP API (b/http/session-handler.ts).
//
// Requests and responses are duck-typed: BrokerRequest {method, path, params, query, body,
// headers, signal?} and BrokerResponse {status(c) → this, json(d), setHeader(n, v) → this,
// write(s), end(), flush?()}. Routes, status codes, JSON bodies and headers are the
// original's. Added on top (contract C36), because the original's own client relies on
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
'use strict';

const { createEventFilter } = require('../event-filter');

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

  // Whether `principal` may do `action` ('list', 'read', 'stream', 'cancel', 'delete') to
  // `session`: its owner may; anyone else only if `authorize` returns true.
  async #mayReach(principal, session, action) {
    if (principal === NO_TENANCY) return true;
    const owner = this.#owners.get(session);
    if (owner !== undefined && principalId(owner) === principalId(principal)) return true;
    if (this.#authorize === undefined) return false;
    const info = {
      sessionId: session.sessionId,
      state: session.state,
      createdAt: session.createdAt,
      expiresAt: session.expiresAt,
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

  // The routes the original lacks (C36); the Express helpers always register them.
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
    if (body.sessionId !== undefined && this.broker.getSession(body.sessionId) !== undefined) {
      this.sendError(res, 409, 'SESSION_EXISTS', `Session ${body.sessionId} already exists`);
      return;
    }
    try {
      // Only the keys the client gave; none at all means `limits: undefined`, which
      // replaces the broker's limits with the defaults (Q1).
      const limits = {};
      if (body.config?.maxExecutionMs !== undefined) limits['sessionTtlMs'] = body.config.maxExecutionMs;
      if (body.config?.maxToolCalls !== undefined) limits['maxToolCalls'] = body.config.maxToolCalls;
      if (body.config?.heartbeatIntervalMs !== undefined) limits['heartbeatIntervalMs'] = body.config.heartbeatIntervalMs;

      let eventFilter;
      if (body.filter) eventFilter = createEventFilter({ config: body.filter });

      const session = this.broker.createSession({
        sessionId: body.sessionId,
        limits: Object.keys(limits).length > 0 ? limits : undefined,
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
  // or 404 has been sent (a session the caller may not reach is answered as missing).
  async #requireSession(req, res, action) {
    const principal = await this.#caller(req, res);
    if (principal === undefined) return undefined;
    const sessionId = this.#requireSessionId(req, res);
    if (sessionId === undefined) return undefined;
    const session = this.broker.getSession(sessionId);
    if (!session || !(await this.#mayReach(principal, session, action))) {
      this.#sendNotFound(res, sessionId);
      return undefined;
    }
    return session;
  }

  async getSession(req, res) {
    this.addCorsHeaders(req, res);
    const session = await this.#requireSession(req, res, 'read');
    if (session === undefined) return;
    res.status(200).json(this.sessionToInfo(session));
  }

  // First seq to send: `fromSeq` as the original; otherwise the client's `from` (C36), or
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

  async terminateSession(req, res) {
    this.addCorsHeaders(req, res);
    if (this.#resolvePrincipal !== undefined && (await this.#requireSession(req, res, 'delete')) === undefined) return;
    const sessionId = this.#requireSessionId(req, res);
    if (sessionId === undefined) return;
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
      // SessionInfo has no tool call count; the original reports 0 (Q11).
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
