// The runtime worker (the original's @enclave-vm/runtime `createRuntimeWorker`): this
// process's engine pool as a WebSocket service for brokers in extracted mode. The server and
// the sessions it runs live in the Rust core (crates/core/src/remote/worker.rs); this class
// checks options and reports. No JavaScript runs per event, and a worker never holds tool
// handlers or secrets: tool calls go back to the broker over the socket.
'use strict';

const native = require('./native');
const host = require('./host');
const { unwrap } = require('./binding-error');
const { resolveLimits, show } = require('./config');

const DEFAULTS = Object.freeze({
  port: 3001,
  host: '0.0.0.0',
  wsPath: '/ws',
  maxSessions: 10,
  heartbeatIntervalMs: 15000,
  connectionTimeoutMs: 30000,
});

const KEYS = ['port', 'host', 'wsPath', 'maxSessions', 'defaultLimits', 'debug', 'heartbeatIntervalMs', 'connectionTimeoutMs', 'auth', 'maxMessageBytes'];

function number(name, value, { min = 0, integer = false } = {}) {
  if (typeof value !== 'number' || !(value >= min) || (integer && !Number.isInteger(value))) {
    throw new TypeError(`${name} must be a${integer ? 'n integer' : ' number'} ≥ ${min}, got ${show(value)}`);
  }
  return value;
}

// `auth`: `{ token }` or `{ tokens: [...] }` (the original's config file form, with
// `type: 'bearer'`); clients present one as `Authorization: Bearer <token>` or `?token=`.
function resolveTokens(auth) {
  if (auth === undefined || auth === null) return undefined;
  if (typeof auth !== 'object') throw new TypeError('auth must be an object: { token } or { tokens: [...] }');
  if (auth.type !== undefined && auth.type !== 'bearer') throw new TypeError(`auth.type must be 'bearer', got ${show(auth.type)}`);
  const tokens = [];
  if (auth.token !== undefined) tokens.push(auth.token);
  if (auth.tokens !== undefined) {
    if (!Array.isArray(auth.tokens)) throw new TypeError('auth.tokens must be an array of strings');
    tokens.push(...auth.tokens);
  }
  if (tokens.length === 0 || tokens.some((t) => typeof t !== 'string' || t === '')) {
    throw new TypeError('auth needs a non-empty token (auth.token or auth.tokens)');
  }
  return tokens;
}

function resolveConfig(config) {
  if (config === null || typeof config !== 'object') throw new TypeError('Runtime worker config must be an object');
  const unknown = Object.keys(config).filter((key) => !KEYS.includes(key));
  if (unknown.length > 0) throw new TypeError(`Unknown runtime worker option "${unknown[0]}"`);
  const c = { ...DEFAULTS, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) };
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) throw new TypeError(`Invalid port ${show(c.port)}`);
  if (typeof c.host !== 'string' || c.host === '') throw new TypeError('host must be a non-empty string');
  if (typeof c.wsPath !== 'string' || !c.wsPath.startsWith('/')) throw new TypeError(`wsPath must start with "/", got ${show(c.wsPath)}`);
  return {
    port: c.port,
    host: c.host,
    wsPath: c.wsPath,
    maxSessions: number('maxSessions', c.maxSessions, { min: 1, integer: true }),
    defaultLimits: resolveLimits(c.defaultLimits),
    heartbeatIntervalMs: number('heartbeatIntervalMs', c.heartbeatIntervalMs),
    connectionTimeoutMs: number('connectionTimeoutMs', c.connectionTimeoutMs),
    tokens: resolveTokens(c.auth),
    maxMessageBytes: c.maxMessageBytes === undefined ? undefined : number('maxMessageBytes', c.maxMessageBytes, { min: 1024 }),
    debug: c.debug === true,
  };
}

class RuntimeWorker {
  #config;
  #native;
  #state = 'idle';
  #startedAt = 0;
  #stopping;

  constructor(config = {}) {
    this.#config = resolveConfig(config);
  }

  get isRunning() {
    return this.#state === 'running';
  }

  /** The bound port (after `start()`; useful with `port: 0`). */
  get port() {
    return this.#native === undefined ? undefined : this.#native.port;
  }

  /** `ws://host:port/wsPath` for brokers (after `start()`). */
  get url() {
    if (this.#native === undefined) return undefined;
    const shown = this.#config.host === '0.0.0.0' || this.#config.host === '::' ? 'localhost' : this.#config.host;
    return `ws://${shown.includes(':') ? `[${shown}]` : shown}:${this.#native.port}${this.#config.wsPath}`;
  }

  async start() {
    if (this.#state !== 'idle' && this.#state !== 'stopped') throw new Error(`Cannot start runtime in state: ${this.#state}`);
    this.#state = 'starting';
    const c = this.#config;
    try {
      this.#native = unwrap(native.BindingRuntimeWorker.start({
        host: c.host,
        port: c.port,
        wsPath: c.wsPath,
        maxSessions: c.maxSessions,
        defaultLimits: c.defaultLimits,
        heartbeatIntervalMs: c.heartbeatIntervalMs,
        connectionTimeoutMs: c.connectionTimeoutMs,
        tokens: c.tokens,
        maxMessageBytes: c.maxMessageBytes,
      }));
    } catch (error) {
      this.#state = 'idle';
      throw error;
    }
    // Like any listening server, a running worker keeps Node alive until stop().
    host.hold();
    this.#startedAt = Date.now();
    this.#state = 'running';
    // The first executions should not wait for engine processes to start.
    native.prewarmEngine(Math.min(c.maxSessions, 2));
    if (c.debug) console.log(`[RuntimeWorker] listening on ${this.url}`);
  }

  /**
   * Graceful stop: the port is freed and new executions are refused at once (brokers place
   * them on other workers); running sessions get `timeout` ms (default 10000) to finish,
   * then are cancelled; then every connection is closed.
   */
  async stop({ timeout = 10000 } = {}) {
    if (this.#state === 'stopping') return this.#stopping;
    if (this.#state !== 'running') return undefined;
    number('timeout', timeout);
    this.#state = 'stopping';
    const worker = this.#native;
    this.#stopping = new Promise((resolve) => host.registerWorker(worker.key, resolve)).then(() => {
      host.release();
      this.#state = 'stopped';
      if (this.#config.debug) console.log('[RuntimeWorker] stopped');
    });
    worker.stop(timeout);
    return this.#stopping;
  }

  getStats() {
    const now = Date.now();
    const stats = this.#native === undefined ? undefined : this.#native.stats();
    const memory = process.memoryUsage();
    const engines = native.engineStats();
    return {
      state: this.#state,
      activeSessions: stats === undefined ? 0 : stats.activeSessions,
      totalSessions: stats === undefined ? 0 : stats.totalSessions,
      startedAt: this.#startedAt,
      uptimeMs: this.#startedAt > 0 ? now - this.#startedAt : 0,
      memoryUsage: { heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, rss: memory.rss },
      connections: stats === undefined ? 0 : stats.connections,
      maxSessions: this.#config.maxSessions,
      engines: { processes: engines.processes, idle: engines.idle, queued: engines.queued },
    };
  }

  getSessions() {
    return this.#native === undefined ? [] : JSON.parse(this.#native.sessionsJson());
  }
}

function createRuntimeWorker(config) {
  return new RuntimeWorker(config);
}

module.exports = { RuntimeWorker, createRuntimeWorker, RUNTIME_DEFAULTS: DEFAULTS };
