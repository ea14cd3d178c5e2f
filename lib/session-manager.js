// SessionManager: the original's session registry (b/session-manager.ts) over the native
// manager, which owns the sessions (so the Rust HTTP server sees the same ones).
'use strict';

const native = require('./native');
const host = require('./host');
const { BrokerSession } = require('./broker-session');
const { resolveSessionConfig, show } = require('./config');

function isRegistry(value) {
  return value !== null && typeof value === 'object' && typeof value.execute === 'function';
}

class SessionManager {
  #registry;
  #native;
  #defaults;
  #maxSessions;
  #wrappers = new Map();
  #maxDepth;
  #timer;

  constructor(toolRegistry, config = {}) {
    if (!isRegistry(toolRegistry)) throw new TypeError('SessionManager needs a ToolRegistry');
    if (config === null || typeof config !== 'object') throw new TypeError('SessionManager config must be an object');
    const maxSessions = config.maxSessions ?? 100;
    const cleanupIntervalMs = config.cleanupIntervalMs ?? 60000;
    if (typeof maxSessions !== 'number' || !(maxSessions >= 0)) {
      throw new TypeError(`maxSessions must be a non-negative number, got ${show(maxSessions)}`);
    }
    if (typeof cleanupIntervalMs !== 'number' || !(cleanupIntervalMs > 0)) {
      throw new TypeError(`cleanupIntervalMs must be a positive number, got ${show(cleanupIntervalMs)}`);
    }
    const defaults = config.defaultSessionConfig ?? {};
    if (typeof defaults !== 'object' || Array.isArray(defaults)) {
      throw new TypeError('defaultSessionConfig must be an object');
    }
    // Bad default limits or enclave options fail here, with the same TypeError a session
    // would give, instead of at every later create().
    const { maxDepth } = resolveSessionConfig(defaults);
    this.#maxDepth = maxDepth;
    this.#registry = toolRegistry;
    this.#maxSessions = maxSessions;
    this.#defaults = defaults;
    this.#native = new native.BindingSessionManager(maxSessions);
    // Tool calls of sessions created without a JS wrapper (by the listen() server) come here.
    host.registerOwner(this.#native.key, toolRegistry, maxDepth);
    // The original's interval kept Node alive until dispose(); this one never does.
    this.#timer = setInterval(() => this.cleanup(), Math.min(cleanupIntervalMs, 2 ** 31 - 1));
    this.#timer.unref();
  }

  get _registry() {
    return this.#registry;
  }

  get _native() {
    return this.#native;
  }

  get _defaults() {
    return this.#defaults;
  }

  create(config = {}) {
    if (this.#native.isDisposed) throw new Error('Session manager is disposed');
    if (config === null) config = {};
    if (typeof config !== 'object' || Array.isArray(config)) throw new TypeError('Session config must be an object');
    // Full: finished and expired sessions make room first (as the error's advice implies).
    if (this.#native.totalCount >= this.#maxSessions) this.cleanup();
    if (this.#native.totalCount >= this.#maxSessions) {
      throw new Error(
        `Maximum sessions reached (${this.#maxSessions}). Wait for existing sessions to complete or increase maxSessions.`,
      );
    }
    // Shallow merge, as the original: a given `limits` replaces the defaults' limits (Q1).
    const merged = { ...this.#defaults, ...config };
    const resolved = resolveSessionConfig(merged);
    const handle = this.#native.create(resolved.binding);
    const session = BrokerSession._fromHandle(handle, this.#registry, resolved.maxDepth);
    // Only an explicit id can replace an existing entry (Q7).
    if (resolved.binding.sessionId !== undefined) {
      for (const [key, existing] of this.#wrappers) {
        if (existing.sessionId === session.sessionId) this.#wrappers.delete(key);
      }
    }
    this.#wrappers.set(handle.key, session);
    return { session, sessionId: session.sessionId };
  }

  get(sessionId) {
    const handle = this.#native.get(String(sessionId));
    if (handle === null) return undefined;
    let session = this.#wrappers.get(handle.key);
    if (session === undefined) {
      // Created by the listen() server: wrapped on first sight, with the defaults' depth limit.
      session = BrokerSession._fromHandle(handle, this.#registry, this.#maxDepth);
      this.#wrappers.set(handle.key, session);
    }
    return session;
  }

  has(sessionId) {
    return this.#native.has(String(sessionId));
  }

  list() {
    return JSON.parse(this.#native.listJson());
  }

  listActive() {
    return JSON.parse(this.#native.listActiveJson());
  }

  async terminate(sessionId, reason) {
    const session = this.get(sessionId);
    const terminated = this.#native.terminate(String(sessionId), reason === undefined ? undefined : String(reason));
    if (session !== undefined) {
      session._catchUp();
      this.#wrappers.delete(session._key);
    }
    return terminated;
  }

  // Seed alias (S001 `destroy(id)`).
  destroy(sessionId) {
    return this.terminate(sessionId);
  }

  async executeAndWait(code, config, eventHandler) {
    // Checked before a session exists, so a bad call leaves nothing behind.
    if (typeof code !== 'string') {
      throw new TypeError(`Script code must be a string, got ${code === null ? 'null' : typeof code}`);
    }
    if (eventHandler !== undefined && typeof eventHandler !== 'function') {
      throw new TypeError('onEvent handler must be a function');
    }
    const { session } = this.create(config);
    if (eventHandler !== undefined) session.onEvent(eventHandler);
    try {
      return await session.execute(code);
    } finally {
      session.dispose();
      this._remove(session);
    }
  }

  _remove(session) {
    this.#native.remove(session._handle);
    this.#wrappers.delete(session._key);
  }

  get activeCount() {
    return this.#native.activeCount;
  }

  get totalCount() {
    return this.#native.totalCount;
  }

  cleanup() {
    const removed = this.#native.cleanup();
    if (removed > 0) {
      const live = new Set(this.#native.keys());
      for (const [key, session] of this.#wrappers) {
        if (!live.has(key)) {
          session._catchUp();
          this.#wrappers.delete(key);
        }
      }
    }
    return removed;
  }

  async dispose() {
    clearInterval(this.#timer);
    this.#native.dispose();
    host.unregisterOwner(this.#native.key);
    for (const session of this.#wrappers.values()) session._catchUp();
    this.#wrappers.clear();
  }
}

function createSessionManager(toolRegistry, config) {
  return new SessionManager(toolRegistry, config);
}

module.exports = { SessionManager, createSessionManager };
