// Express adapter for SessionHandler (b/http/express-adapter.ts).
//
// registerExpressRoutes(router, handler) is the original's: one `router[method](path, fn)`
// per route, Express req/res adapted to BrokerRequest/BrokerResponse, and a rejected
// handler logged and answered with 500 INTERNAL_ERROR. The abort signal is the original's
// too: it fires on the request's 'close' only when the socket is destroyed by then (Q13 in docs/compatibility.md).
//
// On top of that:
// - the cancel route (POST /sessions/:sessionId/cancel, C36 in docs/compatibility.md) is always registered, since
//   the original's own client calls it;
// - registerExpressRoutes(app, broker, {prefix, middleware}) as the docs show it (C31 in docs/compatibility.md);
// - createExpressRouter returns a real Express router (the original's registered nothing,
//   Q12/C30 in docs/compatibility.md) and accepts a Broker as well as a SessionHandler.
'use strict';

const { SessionHandler } = require('./session-handler');

function adaptRequest(req) {
  const abortController = new AbortController();
  if (req.on && req.socket) {
    req.on('close', () => {
      if (req.socket?.destroyed) abortController.abort();
    });
  }
  return {
    method: req.method,
    path: req.path,
    params: req.params,
    query: req.query,
    body: req.body,
    headers: req.headers,
    signal: abortController.signal,
  };
}

function adaptResponse(res) {
  return {
    status(code) {
      res.status(code);
      return this;
    },
    json(data) {
      res.json(data);
    },
    setHeader(name, value) {
      res.setHeader(name, value);
      return this;
    },
    write(data) {
      res.write(data);
    },
    end() {
      res.end();
    },
    flush() {
      if (res.flushHeaders) res.flushHeaders();
      if (res.flush) res.flush();
    },
  };
}

function toExpressHandler(route) {
  return (req, res) => {
    const brokerReq = adaptRequest(req);
    const brokerRes = adaptResponse(res);
    route.handler(brokerReq, brokerRes).catch((error) => {
      console.error('Route handler error:', error);
      try {
        res.status(500).json({ code: 'INTERNAL_ERROR', message: 'Internal server error' });
      } catch {
        // The response may already be streaming or finished.
      }
    });
  };
}

function isBroker(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.createSession === 'function' &&
    typeof value.getSession === 'function' &&
    typeof value.listSessions === 'function'
  );
}

// A SessionHandler (or anything with getRoutes()) is used as is; a Broker gets a
// SessionHandler configured from the options' `cors` / `allowedOrigins`.
function resolveHandler(target, options, caller) {
  if (target !== null && typeof target === 'object' && typeof target.getRoutes === 'function') {
    return { handler: target, fromBroker: false };
  }
  if (isBroker(target)) {
    const handler = new SessionHandler({
      broker: target,
      cors: options.cors,
      allowedOrigins: options.allowedOrigins,
    });
    return { handler, fromBroker: true };
  }
  throw new TypeError(`${caller} needs a SessionHandler or a Broker`);
}

function routesOf(handler) {
  const routes = handler.getRoutes().slice();
  if (typeof handler.getExtraRoutes === 'function') {
    for (const extra of handler.getExtraRoutes()) {
      if (!routes.some((r) => r.method === extra.method && r.path === extra.path)) routes.push(extra);
    }
  }
  return routes;
}

// Express is only needed for what the caller did not pass in (a Router factory, a JSON
// body parser), and is then loaded from the application's own dependencies.
function loadExpress(options) {
  if (options.express) return options.express;
  try {
    return require('express');
  } catch (error) {
    throw new Error(
      "Express is not installed: install 'express', or pass `express`, `Router` or `json` in the options",
      { cause: error },
    );
  }
}

function jsonParser(options) {
  if (typeof options.json === 'function') return options.json;
  const parserOptions = options.json !== null && typeof options.json === 'object' ? options.json : undefined;
  return loadExpress(options).json(parserOptions);
}

function normalizePrefix(prefix) {
  if (prefix === undefined || prefix === null || prefix === '' || prefix === '/') return '';
  let p = String(prefix);
  if (!p.startsWith('/')) p = '/' + p;
  return p.replace(/\/+$/, '');
}

function toMiddlewareList(middleware) {
  if (middleware === undefined || middleware === null) return [];
  const list = Array.isArray(middleware) ? middleware : [middleware];
  for (const fn of list) {
    if (typeof fn !== 'function') throw new TypeError('middleware must be a function or an array of functions');
  }
  return list;
}

/**
 * registerExpressRoutes(router, handler): the original form; the caller installs
 * express.json(). registerExpressRoutes(app, broker, {prefix, middleware, cors,
 * allowedOrigins, json}): the documented form; JSON bodies of its POST routes are parsed
 * unless `json: false` (`json` may also be body-parser options or a middleware).
 */
function registerExpressRoutes(router, handlerOrBroker, options) {
  const opts = options ?? {};
  const { handler, fromBroker } = resolveHandler(handlerOrBroker, opts, 'registerExpressRoutes');
  const prefix = normalizePrefix(opts.prefix);
  const middleware = toMiddlewareList(opts.middleware);
  const wantsJson = opts.json === undefined ? fromBroker : opts.json !== false;
  const json = wantsJson ? jsonParser(opts) : undefined;
  for (const route of routesOf(handler)) {
    const method = route.method.toLowerCase();
    const chain = [];
    if (json !== undefined && method === 'post') chain.push(json);
    chain.push(...middleware, toExpressHandler(route));
    router[method](prefix + route.path, ...chain);
  }
}

/**
 * createExpressRouter(handlerOrBroker, options?): an Express router with every session
 * route (cancel included) and JSON body parsing on its POST routes, to mount with
 * app.use(path, router). Options: `Router` (a router factory) or `express` (the module),
 * else require('express'); plus those of registerExpressRoutes.
 */
function createExpressRouter(handlerOrBroker, options) {
  const opts = options ?? {};
  const { handler } = resolveHandler(handlerOrBroker, opts, 'createExpressRouter');
  const Router = typeof opts.Router === 'function' ? opts.Router : loadExpress(opts).Router;
  const router = Router();
  registerExpressRoutes(router, handler, { ...opts, json: opts.json ?? true });
  return router;
}

module.exports = { registerExpressRoutes, createExpressRouter };
