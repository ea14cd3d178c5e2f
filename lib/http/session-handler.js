// SessionHandler: the original's framework-agnostic HTTP API (b/http/session-handler.ts).
//
// Requests and responses are duck-typed: BrokerRequest {method, path, params, query, body,
// headers, signal?} and BrokerResponse {status(c) → this, json(d), setHeader(n, v) → this,
// write(s), end(), flush?()}. Routes, status codes, JSON bodies and headers are the
// original's, decided by the core's HTTP rules (crates/core/src/http/rules.rs), the same the
// listen() server applies; this file adapts req/res to them and calls the broker. Added on top (C36 in docs/compatibility.md), because the original's own client relies on
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

const native = require('../native');
const { eventFilterOf } = require('../event-filter');
const { INTERNALS } = require('../broker');
const { SESSION_OWNER } = require('../config');

// The core's rules (crates/core/src/http/rules.rs, through src/http_rules.rs), the ones the
// listen() server applies: the route tables and the keys of `config` that become limits,
// read once; everything else is asked per request. This file only adapts req/res to them.
const ROUTES = native.httpRoutes(false);
const EXTRA_ROUTES = native.httpRoutes(true);
const LIMIT_FIELDS = native.httpLimitFields();
const STREAM_HEADERS = native.httpStreamHeaders();
// The CORS headers the rules gave per request origin, for the origins in use (bounded: the
// origin is the client's to choose).
const MAX_CACHED_ORIGINS = 64;

// A request value as the rules read it: absent, or `String(value)` (what parseInt and
// JSON.parse read of it in the original).
const text = (value) => (value === undefined || value === null ? undefined : String(value));

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

// A principal's key in the shared registry (the core's).
const principalKey = (principal) => native.httpPrincipalKey(principalId(principal));

// A session of the shared registry that this process does not hold.
class SharedSession {
  constructor(info) {
    this.info = info;
  }

  get sessionId() {
    return this.info.sessionId;
  }
}

// The refusal named `name` (see src/http_rules.rs) about `subject` (a session id or a message).
const refusal = (name, subject) => native.httpRefusal(name, text(subject));

// The refusal for an answer of the broker running a shared session, or undefined when done.
function commandRefusal(sessionId, answer) {
  if (answer.status === 'done') return undefined;
  if (answer.status === 'notFound') return refusal('notFound', sessionId);
  return answer.status === 'invalid' ? refusal('invalidState', answer.message) : refusal('brokerUnavailable', answer.message);
}

// The session-info JSON of a session (the shape is the core's).
const sessionInfoJson = (source, duration, toolCallCount) =>
  native.httpSessionInfo(source.sessionId, source.state, source.createdAt, source.expiresAt, duration, toolCallCount);

class SessionHandler {
  #extraRoutes;
  #resolvePrincipal;
  #authorize;
  // BrokerSession → the principal that created it through this handler.
  #owners = new WeakMap();
  #corsCache;

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
      this.#refuse(res, refusal('unauthorized'));
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

  // A refusal of the rules, as the response.
  #refuse(res, { status, code, message }) {
    this.sendError(res, status, code, message);
  }

  getRoutes() {
    const routes = ROUTES.map((route) => this.#bound(route));
    return this.#extraRoutes ? routes.concat(this.getExtraRoutes()) : routes;
  }

  // The routes the original lacks (C36 in docs/compatibility.md); the Express helpers always register them.
  getExtraRoutes() {
    return EXTRA_ROUTES.map((route) => this.#bound(route));
  }

  #bound(route) {
    return { method: route.method, path: route.path, handler: this[route.handler].bind(this) };
  }

  addCorsHeaders(req, res) {
    if (!this.cors) return;
    const origin = req.headers['origin'];
    for (const { name, value } of this.#corsHeaders(typeof origin === 'string' ? origin : undefined)) {
      res.setHeader(name, value);
    }
  }

  // The rules' CORS headers for a request from `origin`, remembered while `allowedOrigins`
  // (a public field, which may be replaced or changed in place) lists the same origins.
  #corsHeaders(origin) {
    const origins = this.allowedOrigins;
    const allowed = Array.isArray(origins) ? origins.filter((o) => typeof o === 'string') : [];
    const key = allowed.join('\n');
    if (this.#corsCache === undefined || this.#corsCache.key !== key) this.#corsCache = { key, byOrigin: new Map() };
    const { byOrigin } = this.#corsCache;
    let headers = byOrigin.get(origin);
    if (headers === undefined) {
      headers = native.httpCorsHeaders(true, allowed, origin);
      if (byOrigin.size >= MAX_CACHED_ORIGINS) byOrigin.clear();
      byOrigin.set(origin, headers);
    }
    return headers;
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
      res.status(200).json(JSON.parse(native.httpSessionList(sessions.map((info) => this.#listedJson(info)))));
    } catch {
      this.#refuse(res, refusal('listFailed'));
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
    res.status(200).json(JSON.parse(native.httpSessionList(infos.map((info) => this.#listedJson(info)))));
  }

  async createSession(req, res) {
    this.addCorsHeaders(req, res);
    const principal = await this.#caller(req, res);
    if (principal === undefined) return;
    const body = req.body;
    const invalid = native.httpCodeRefusal(body?.code);
    if (invalid !== null) {
      this.#refuse(res, invalid);
      return;
    }
    if (this.broker.isDisposed) {
      this.#refuse(res, refusal('disposed'));
      return;
    }
    // A client-chosen id never replaces a session (the original's replace-on-duplicate
    // stays on the embedder's SessionManager API).
    const shared = this.#shared();
    const exists = async (id) => this.broker.getSession(id) !== undefined || (shared !== undefined && (await shared.find(id)) !== null);
    if (body.sessionId !== undefined && (await exists(body.sessionId))) {
      this.#refuse(res, refusal('sessionExists', body.sessionId));
      return;
    }
    try {
      // Only the keys the client gave; none at all means `limits: undefined`, which
      // replaces the broker's limits with the defaults (Q1 in docs/compatibility.md).
      const limits = {};
      for (const { field, limit } of LIMIT_FIELDS) {
        if (body.config?.[field] !== undefined) limits[limit] = body.config[field];
      }

      const filter = native.httpBodyFilter(JSON.stringify(body.filter));
      if (filter !== null && !(filter instanceof native.BindingEventFilter)) {
        this.#refuse(res, filter);
        return;
      }
      const eventFilter = filter === null ? undefined : eventFilterOf(body.filter, filter);

      const session = this.broker.createSession({
        sessionId: body.sessionId,
        limits: Object.keys(limits).length > 0 ? limits : undefined,
        ...(principal === NO_TENANCY ? {} : { [SESSION_OWNER]: principalId(principal) }),
      });
      if (principal !== NO_TENANCY) this.#owners.set(session, principal);

      this.#setStreamHeaders(res, session.sessionId);

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
      this.#refuse(res, refusal('sessionCreateError', error instanceof Error ? error.message : 'Unknown error'));
    }
  }

  #setStreamHeaders(res, sessionId) {
    for (const { name, value } of STREAM_HEADERS.fixed) res.setHeader(name, value);
    res.setHeader(STREAM_HEADERS.sessionId, sessionId);
  }

  // The route's `:sessionId`, or undefined once a 400 has been sent.
  #requireSessionId(req, res) {
    const sessionId = req.params['sessionId'];
    if (!sessionId) {
      this.#refuse(res, refusal('missingSessionId'));
      return undefined;
    }
    return sessionId;
  }

  #sendNotFound(res, sessionId) {
    this.#refuse(res, refusal('notFound', sessionId));
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
      res.status(200).json(JSON.parse(sessionInfoJson(info, Date.now() - info.createdAt, info.toolCallCount)));
      return;
    }
    res.status(200).json(this.sessionToInfo(session));
  }

  // First seq to send: `fromSeq` as the original; otherwise the client's `from` (C36 in docs/compatibility.md), or
  // an EventSource-style Last-Event-ID (the last seq the client has, so the next one).
  resolveFromSeq(req) {
    const query = req.query ?? {};
    return native.httpReplayStart(text(query['fromSeq']), text(query['from']), text(headerValue(req.headers, 'last-event-id')));
  }

  async streamSession(req, res) {
    this.addCorsHeaders(req, res);
    const session = await this.#requireSession(req, res, 'stream');
    if (session === undefined) return;

    const fromSeq = this.resolveFromSeq(req);

    const filterText = text(req.query['filter']);
    const filter = native.httpQueryFilter(filterText);
    if (filter !== null && !(filter instanceof native.BindingEventFilter)) {
      this.#refuse(res, filter);
      return;
    }
    const eventFilter = filter === null ? undefined : eventFilterOf(JSON.parse(filterText), filter);

    this.#setStreamHeaders(res, session.sessionId);

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
      // subscription must not outlive it. Unlike the original, a stream that has begun
      // is ended, so its client is not left waiting for events that will never come.
      ended = true;
      unsubscribe();
      if (wroteAny) res.end();
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
      this.#answerCommand(res, sessionId, await this.#shared().command(sessionId, { op: 'delete' }));
      return;
    }
    const success = await this.broker.terminateSession(sessionId);
    if (!success) {
      this.#sendNotFound(res, sessionId);
      return;
    }
    this.#sendSuccess(res, sessionId);
  }

  // POST /sessions/:sessionId/cancel {reason?}: unlike DELETE, the session stays in the
  // broker, so its stream can still be replayed to the end.
  async cancelSession(req, res) {
    this.addCorsHeaders(req, res);
    const session = await this.#requireSession(req, res, 'cancel');
    if (session === undefined) return;
    const reason = req.body && typeof req.body.reason === 'string' ? req.body.reason : undefined;
    if (session instanceof SharedSession) {
      this.#answerCommand(res, session.sessionId, await this.#shared().command(session.sessionId, { op: 'cancel', reason }));
      return;
    }
    await session.cancel(reason);
    this.#sendSuccess(res, session.sessionId);
  }

  // The answer of the broker running a shared session, as the route's response.
  #answerCommand(res, sessionId, answer) {
    const refused = commandRefusal(sessionId, answer);
    if (refused === undefined) this.#sendSuccess(res, sessionId);
    else this.#refuse(res, refused);
  }

  #sendSuccess(res, sessionId) {
    res.status(200).json(JSON.parse(native.httpSuccess(String(sessionId))));
  }

  sessionToInfo(session) {
    const stats = session.getStats();
    return JSON.parse(sessionInfoJson(session, stats.duration, stats.toolCallCount));
  }

  // A listed session: SessionInfo has no tool call count; the original reports 0 (Q11 in docs/compatibility.md).
  #listedJson(info) {
    return sessionInfoJson(info, Date.now() - info.createdAt, 0);
  }

  sessionInfoToResponse(info) {
    return JSON.parse(this.#listedJson(info));
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
