// SessionManager: the original's session registry (b/session-manager.ts) over the native
// manager, which owns the sessions (so the Rust HTTP server sees the same ones).
'use strict';

const native = require('./native');
const { toolFunction, runToolCall } = require('./tool-runner');
const { BrokerSession } = require('./broker-session');
const { resolveSessionConfig, show } = require('./config');
const { unwrap } = require('./binding-error');
const { ToolRegistry } = require('./tool-registry');

function isRegistry(value) {
  return value !== null && typeof value === 'object' && typeof value.execute === 'function';
}

const SEED_OPTIONS = ['maxConcurrentSessions', 'sessionTimeout', 'cleanupInterval'];

// The seed's `new SessionManager({maxConcurrentSessions, sessionTimeout, cleanupInterval})`
// (S001, C26 in docs/compatibility.md) as the original's arguments: an empty registry, and only the keys
// given (never the seed's defaults).
function fromSeedOptions(options) {
  const unknown = Object.keys(options).filter((key) => !SEED_OPTIONS.includes(key));
  if (unknown.length > 0) {
    throw new TypeError(`SessionManager needs a ToolRegistry (or seed options ${SEED_OPTIONS.join(', ')}), got key "${unknown[0]}"`);
  }
  const config = {};
  if (options.maxConcurrentSessions !== undefined) config.maxSessions = options.maxConcurrentSessions;
  if (options.cleanupInterval !== undefined) config.cleanupIntervalMs = options.cleanupInterval;
  if (options.sessionTimeout !== undefined) config.defaultSessionConfig = { limits: { sessionTtlMs: options.sessionTimeout } };
  return [new ToolRegistry(), config];
}

// The seed's `userId` / `metadata` of `create()`, kept beside the session.
function ownerOf(config) {
  const { userId, metadata } = config;
  if (userId === undefined && metadata === undefined) return undefined;
  if (userId !== undefined && typeof userId !== 'string') throw new TypeError(`userId must be a string, got ${show(userId)}`);
  if (metadata !== undefined && (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))) {
    throw new TypeError('metadata must be an object');
  }
  const owner = {};
  if (userId !== undefined) owner.userId = userId;
  if (metadata !== undefined) owner.metadata = metadata;
  return owner;
}

class SessionManager {
  #registry;
  #native;
  #defaults;
  #wrappers = new Map();
  #maxDepth;
  #timer;
  // Session key → the seed's {userId?, metadata?} given to create().
  #owners = new Map();

  constructor(toolRegistry, config = {}) {
    if (!isRegistry(toolRegistry) && toolRegistry !== null && typeof toolRegistry === 'object' && arguments.length === 1) {
      [toolRegistry, config] = fromSeedOptions(toolRegistry);
    }
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
    this.#defaults = defaults;
    // The tool calls of this manager's sessions: through the session's wrapper (its depth
    // limit and 'tool_call' listeners), or, for sessions the listen() server created and
    // nobody wrapped, through the registry with the defaults' depth limit.
    const wrappers = this.#wrappers;
    const tools = toolFunction((call) => {
      const session = wrappers.get(call.sessionKey);
      if (session !== undefined) session._runToolCall(call);
      else runToolCall(call, toolRegistry, maxDepth);
    });
    this.#native = new native.BindingSessionManager(maxSessions, tools);
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

  // Starts an engine process for sessions made from the defaults unless one exists, so that
  // the first execute finds it started. Defaults the config rules refuse start nothing: the
  // first create() reports them, as it always did.
  _prewarmEngine() {
    let resolved;
    try {
      resolved = resolveSessionConfig(this.#defaults);
    } catch {
      return;
    }
    native.prewarmEngineFor(resolved.binding);
  }

  create(config = {}) {
    // Disposed or full is the core's answer (a full manager first sweeps finished and
    // expired sessions), asked before the config is read, as the original did.
    if (unwrap(this.#native.makeRoom()) > 0) this.#forgetRemoved();
    if (config === null) config = {};
    if (typeof config !== 'object' || Array.isArray(config)) throw new TypeError('Session config must be an object');
    // Shallow merge, as the original: a given `limits` replaces the defaults' limits (Q1 in docs/compatibility.md).
    const merged = { ...this.#defaults, ...config };
    const resolved = resolveSessionConfig(merged);
    const owner = ownerOf(config);
    const handle = unwrap(this.#native.create(resolved.binding));
    if (owner !== undefined) this.#owners.set(handle.key, owner);
    const session = BrokerSession._fromHandle(handle, this.#registry, resolved.maxDepth);
    // Only an explicit id can replace an existing entry (Q7 in docs/compatibility.md).
    if (resolved.binding.sessionId !== undefined) {
      for (const [key, existing] of this.#wrappers) {
        if (existing.sessionId === session.sessionId) {
          this.#wrappers.delete(key);
          this.#owners.delete(key);
        }
      }
    }
    this.#wrappers.set(handle.key, session);
    const created = { session, sessionId: session.sessionId };
    // The seed reads `created.id`; non-enumerable, so the original's shape is unchanged.
    Object.defineProperty(created, 'id', { value: session.sessionId });
    return created;
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

  // `filter` (seed S001 in docs/compatibility.md): `{userId}` keeps that user's sessions.
  list(filter) {
    return this.#withOwners(JSON.parse(this.#native.listJson()), filter);
  }

  listActive(filter) {
    return this.#withOwners(JSON.parse(this.#native.listActiveJson()), filter);
  }

  // Adds `userId` / `metadata` to the infos of sessions created with them (others keep the
  // original's shape), then applies the seed's filter.
  #withOwners(infos, filter) {
    if (filter !== undefined && filter !== null && (typeof filter !== 'object' || Array.isArray(filter))) {
      throw new TypeError('list filter must be an object');
    }
    if (this.#owners.size > 0) {
      const byId = new Map();
      for (const [key, owner] of this.#owners) {
        const session = this.#wrappers.get(key);
        if (session !== undefined) byId.set(session.sessionId, owner);
      }
      for (const info of infos) Object.assign(info, byId.get(info.sessionId));
    }
    if (filter === undefined || filter === null || filter.userId === undefined) return infos;
    return infos.filter((info) => info.userId === filter.userId);
  }

  async terminate(sessionId, reason) {
    const session = this.get(sessionId);
    const terminated = this.#native.terminate(String(sessionId), reason === undefined ? undefined : String(reason));
    if (session !== undefined) {
      session._catchUp();
      this.#wrappers.delete(session._key);
      this.#owners.delete(session._key);
    }
    return terminated;
  }

  // Seed alias (S001 in docs/compatibility.md `destroy(id)`).
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
    this.#owners.delete(session._key);
  }

  get activeCount() {
    return this.#native.activeCount;
  }

  get totalCount() {
    return this.#native.totalCount;
  }

  cleanup() {
    const removed = this.#native.cleanup();
    if (removed > 0) this.#forgetRemoved();
    return removed;
  }

  // Drops the wrappers of sessions the core no longer holds (their last events delivered).
  #forgetRemoved() {
    const live = new Set(this.#native.keys());
    for (const [key, session] of this.#wrappers) {
      if (!live.has(key)) {
        session._catchUp();
        this.#wrappers.delete(key);
        this.#owners.delete(key);
      }
    }
  }

  async dispose() {
    clearInterval(this.#timer);
    this.#native.dispose();
    for (const session of this.#wrappers.values()) session._catchUp();
    this.#wrappers.clear();
    this.#owners.clear();
  }
}

function createSessionManager(toolRegistry, config) {
  return new SessionManager(toolRegistry, config);
}

module.exports = { SessionManager, createSessionManager };
