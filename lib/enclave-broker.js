// EnclaveBroker: the seed API's broker that serves HTTP itself (`listen(port)`), on top of
// the original's Broker. The server runs in Rust; this class maps the seed's options and
// answers the server's calls into user code (`authentication.validate`,
// `rateLimiting.keyGenerator`, `authorize`). Its broker events are Broker's (broker-events.js).
// With `redis`, its sessions, streams, commands and rate limits are shared with every broker
// on the same Redis (redis-option.js, cluster.js; the core's `cluster` module).
'use strict';

const path = require('node:path');
const native = require('./native');
const host = require('./host');
const { unwrap } = require('./binding-error');
const { Broker, INTERNALS, BROKER_EVENTS, DISPOSE_WITHIN } = require('./broker');
const { BrokerEvents } = require('./broker-events');
const { resolveSessionConfig } = require('./config');

const AUTH_TYPES = ['bearer', 'api-key', 'custom'];

// The playground page this package ships (`playground: true`), and where it is served.
const PLAYGROUND_DIR = path.join(__dirname, '..', 'playground');
const PLAYGROUND_PATH = '/playground';

function positive(name, value, { allowZero = false } = {}) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(allowZero ? value >= 0 : value > 0)) {
    throw new TypeError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  }
  return value;
}

function checkAuthentication(auth) {
  if (auth === undefined) return undefined;
  if (auth === null || typeof auth !== 'object' || !AUTH_TYPES.includes(auth.type)) {
    throw new TypeError(`authentication.type must be one of ${AUTH_TYPES.map((t) => `'${t}'`).join(', ')}`);
  }
  if (typeof auth.validate !== 'function') throw new TypeError('authentication.validate must be a function');
  if (auth.maxFailures !== undefined && !(Number.isInteger(auth.maxFailures) && auth.maxFailures >= 1)) {
    throw new TypeError('authentication.maxFailures must be a positive integer');
  }
  positive('authentication.failureWindowMs', auth.failureWindowMs);
  return auth;
}

function checkRateLimiting(limits) {
  if (limits === undefined) return undefined;
  if (limits === null || typeof limits !== 'object') throw new TypeError('rateLimiting must be an object');
  positive('rateLimiting.windowMs', limits.windowMs);
  positive('rateLimiting.maxRequests', limits.maxRequests, { allowZero: true });
  if (limits.windowMs === undefined || limits.maxRequests === undefined) {
    throw new TypeError('rateLimiting needs windowMs and maxRequests');
  }
  if (limits.keyGenerator !== undefined && typeof limits.keyGenerator !== 'function') {
    throw new TypeError('rateLimiting.keyGenerator must be a function');
  }
  return limits;
}

// The seed's option names onto the original's BrokerConfig (C6 in docs/compatibility.md): seed keys apply
// only when given, and never bring the seed's defaults with them.
function brokerConfig(options) {
  const { sessionTimeout, maxConcurrentSessions, cleanupInterval, ...config } = options;
  if (sessionTimeout !== undefined) {
    config.limits = { ...config.limits, sessionTtlMs: positive('sessionTimeout', sessionTimeout) };
  }
  if (maxConcurrentSessions !== undefined || cleanupInterval !== undefined) {
    config.sessions = { ...config.sessions };
    if (maxConcurrentSessions !== undefined) {
      config.sessions.maxSessions = positive('maxConcurrentSessions', maxConcurrentSessions, { allowZero: true });
    }
    if (cleanupInterval !== undefined) config.sessions.cleanupIntervalMs = positive('cleanupInterval', cleanupInterval);
  }
  return config;
}

class EnclaveBroker extends Broker {
  #options;
  #server;
  #closed;
  #events;
  #joining = false;

  constructor(options = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('EnclaveBroker options must be an object');
    checkAuthentication(options.authentication);
    checkRateLimiting(options.rateLimiting);
    if (options.authorize !== undefined && typeof options.authorize !== 'function') {
      throw new TypeError('authorize must be a function');
    }
    positive('maxBodyBytes', options.maxBodyBytes);
    if (options.playground !== undefined && typeof options.playground !== 'boolean') {
      throw new TypeError('playground must be a boolean');
    }
    const events = new BrokerEvents();
    super({ ...brokerConfig(options), [BROKER_EVENTS]: events });
    this.#events = events;
    events.watchListeners(() => this.#syncSessionEvents());
    this.#options = options;
  }

  #log(level, message) {
    const logger = this.#options.logger;
    if (logger && typeof logger[level] === 'function') logger[level](message);
  }

  // The server reports the sessions it creates only while someone listens for them (a fired
  // once() listener leaves it reporting until the next change, which only costs messages).
  #syncSessionEvents() {
    if (this.#server !== undefined) this.#server.setSessionEvents(this.#events.observingSessions);
  }

  /** The port the server listens on (after `listen`). */
  get port() {
    return this.#server === undefined ? undefined : this.#server.port;
  }

  /** The path of the playground page (`playground: true`), else undefined. */
  get playgroundPath() {
    return this.#options.playground ? `${PLAYGROUND_PATH}/` : undefined;
  }

  async listen(port = 0, hostname = '0.0.0.0') {
    if (this.isDisposed) throw new Error('Broker is disposed');
    if (this.#server !== undefined || this.#joining) throw new Error('The broker is already listening');
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`Invalid port ${String(port)}`);
    const options = this.#options;
    const { sessions } = this[INTERNALS];
    const defaults = sessions._defaults;
    const resolved = resolveSessionConfig(defaults);
    const rate = options.rateLimiting;
    const auth = options.authentication;
    // Shared state first: a broker that cannot reach Redis does not serve.
    const { shared } = this[INTERNALS];
    this.#joining = true;
    try {
      await this.connect();
    } finally {
      this.#joining = false;
    }
    const server = this.#startServer(sessions, resolved, hostname, port, shared?.native);
    this.#server = server;
    this.#closed = new Promise((resolve) => {
      host.registerServer(
        server.key,
        {
          validate: auth ? auth.validate : undefined,
          keyGenerator: rate ? rate.keyGenerator : undefined,
          authorize: options.authorize,
        },
        resolve,
        (sessionId) => {
          const session = this.getSession(sessionId);
          if (session !== undefined) this.#events.sessionCreated(session);
        },
      );
    });
    // Like any listening server, this keeps Node running until close().
    host.hold();
    this.#log('info', `EnclaveBroker listening on ${hostname}:${server.port}`);
  }

  #startServer(sessions, resolved, hostname, port, cluster) {
    const options = this.#options;
    const rate = options.rateLimiting;
    const auth = options.authentication;
    return unwrap(native.BindingHttpServer.listen(sessions._native, {
      host: hostname,
      port,
      maxBodyBytes: options.maxBodyBytes,
      bodyTimeoutMs: options.bodyTimeoutMs,
      callbackTimeoutMs: options.callbackTimeoutMs,
      cors: options.cors,
      allowedOrigins: options.allowedOrigins,
      cancelOnDisconnect: options.cancelOnDisconnect,
      auth: auth ? auth.type : undefined,
      authMaxFailures: auth ? auth.maxFailures : undefined,
      authFailureWindowMs: auth ? auth.failureWindowMs : undefined,
      authorize: options.authorize !== undefined,
      rateLimitWindowMs: rate ? rate.windowMs : undefined,
      rateLimitMaxRequests: rate ? rate.maxRequests : undefined,
      rateLimitKeyGenerator: Boolean(rate && rate.keyGenerator),
      defaults: resolved.binding,
      externalTools: resolved.binding.externalTools,
      sessionEvents: this.#events.observingSessions,
      staticFilesDir: options.playground ? PLAYGROUND_DIR : undefined,
      staticFilesMount: options.playground ? PLAYGROUND_PATH : undefined,
    }, cluster));
  }

  /**
   * Stops the server: the port is freed at once, open streams get `timeout` ms (default
   * 5000) to finish, then their sessions are cancelled so every stream still ends with
   * `final`. Then the broker is disposed.
   */
  async close({ timeout = 5000 } = {}) {
    const grace = positive('timeout', timeout, { allowZero: true });
    const server = this.#server;
    if (server !== undefined) {
      this.#server = undefined;
      server.close(grace);
      await this.#closed;
      host.release();
      this.#log('info', 'EnclaveBroker closed');
    }
    // With `redis`, the sessions' last events get `timeout` to reach Redis.
    await this[DISPOSE_WITHIN](grace);
  }
}

module.exports = { EnclaveBroker };
