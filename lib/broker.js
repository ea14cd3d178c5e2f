// Broker: the original's entry point (b/broker.ts): tools, secrets, sessions, execute.
// Seed-API additions, inert unless used: `tools` given as a ToolRegistry or as a record of
// handler functions, a `toolHandler` for tools the registry lacks, `middleware` around
// handlers, `externalTools` with `submitToolResult` for tools the client runs itself,
// `securityLevel` (broker-options.js), `mode` (runtime-mode.js), broker events (broker-events.js),
// `executeToolCall` for the embedder-driven tool loop (tool-call-listeners.js), and `redis`:
// the broker's sessions shared with every broker on the same Redis (cluster.js).
'use strict';

const { ToolRegistry } = require('./tool-registry');
const { applyRuntimePool } = require('./engine-pool');
const { SessionManager } = require('./session-manager');
const { resolveExternalTools } = require('./config');
const { attachEventStream } = require('./event-stream');
const { ALL_EVENTS, resolveExecuteOptions, resolveSessionOptions } = require('./seed-options');
const { checkMiddleware, runThroughMiddleware } = require('./middleware');
const { BrokerEvents } = require('./broker-events');
const { enclaveWithSecurityLevel } = require('./broker-options');
const { resolveRuntimeMode } = require('./runtime-mode');
const { redisConnection } = require('./redis-option');
const { SharedState } = require('./cluster');

// Lets EnclaveBroker reach what the original keeps private.
const INTERNALS = Symbol('brokerInternals');
// EnclaveBroker's BrokerEvents, handed to the Broker constructor (the original has no events).
const BROKER_EVENTS = Symbol('brokerEvents');
// `dispose()` giving buffered shared events `ms` to reach Redis (EnclaveBroker.close's timeout).
const DISPOSE_WITHIN = Symbol('disposeWithin');
// How long `dispose()` lets buffered events reach Redis by default.
const LEAVE_TIMEOUT_MS = 5000;

function isRegistry(value) {
  return value !== null && typeof value === 'object' && typeof value.execute === 'function' && typeof value.register === 'function';
}

// What sessions call tools through: the registry, falling back to `toolHandler(args,
// context)` for tools it does not have, with every handler run through `middleware`.
function sessionRegistry(registry, toolHandler, middleware) {
  if (toolHandler !== undefined && typeof toolHandler !== 'function') throw new TypeError('toolHandler must be a function');
  if (toolHandler === undefined && middleware === undefined) return registry;
  const invoke =
    middleware === undefined
      ? undefined
      : (name, args, context, handler) => runThroughMiddleware(middleware, { name, args, context }, (callArgs) => handler(callArgs, context));
  return {
    register: (def) => registry.register(def),
    execute: async (name, args, ctx = {}) => {
      if (toolHandler === undefined || registry.has(name)) return registry.execute(name, args, ctx, invoke);
      const started = Date.now();
      const context = { sessionId: ctx.sessionId, callId: ctx.callId, secrets: {}, signal: ctx.signal, toolName: name };
      try {
        const value = await (invoke === undefined ? toolHandler(args, context) : invoke(name, args, context, toolHandler));
        return { success: true, value, durationMs: Date.now() - started };
      } catch (error) {
        const code = error !== null && typeof error === 'object' && error.code != null ? String(error.code) : 'EXECUTION_ERROR';
        const message = error !== null && typeof error === 'object' && error.message !== undefined ? String(error.message) : String(error);
        return { success: false, error: { code, message }, durationMs: Date.now() - started };
      }
    },
  };
}

class Broker {
  #registry;
  #sessions;
  #disposed = false;
  #sources = [];
  #config;
  #events;
  #runtime;
  #shared;

  constructor(config = {}) {
    if (config === null || typeof config !== 'object') throw new TypeError('Broker config must be an object');
    // `mode` (embedded | extracted): checked first, started once the broker is built.
    const runtime = resolveRuntimeMode(config);
    const tools = config.tools;
    this.#registry = isRegistry(tools) ? tools : new ToolRegistry();
    if (tools !== undefined && !isRegistry(tools)) {
      if (tools === null || typeof tools !== 'object') throw new TypeError('tools must be a ToolRegistry or an object of handlers');
      for (const [name, handler] of Object.entries(tools)) {
        this.#registry.register(typeof handler === 'function' ? { name, handler } : { ...handler, name });
      }
    }
    // Engine processes are started ahead of demand only where scripts run (not in extracted mode).
    applyRuntimePool(config.runtimePool, { startEngines: runtime.mode === 'embedded' });
    const externalTools = resolveExternalTools(config.externalTools);
    const redis = redisConnection(config.redis, config.cluster);
    const enclaveConfig = enclaveWithSecurityLevel(config);
    const sessions = config.sessions ?? {};
    this.#config = config;
    this.#events = config[BROKER_EVENTS] ?? new BrokerEvents();
    const callable = this.#events.observeTools(
      sessionRegistry(this.#registry, config.toolHandler, checkMiddleware(config.middleware)),
    );
    this.#events.bindSessions((sessionId) => this.#sessions.get(sessionId));
    this.#sessions = new SessionManager(callable, {
      ...sessions,
      defaultSessionConfig: { limits: config.limits, enclaveConfig, externalTools },
    });
    runtime.start(this.#sessions._native);
    this.#runtime = runtime;
    // Where scripts run here, an engine process starts now, while the service sets up, so
    // that the first execute does not pay for starting one; `runtimePool.minSize: 0` opts out.
    if (runtime.mode === 'embedded' && config.runtimePool?.minSize !== 0) this.#sessions._prewarmEngine();
    if (redis !== undefined) this.#shared = new SharedState(this.#sessions._native, redis);
  }

  /**
   * With `redis`: resolves once this broker has reached Redis, or rejects with an Error that
   * names it (connecting goes on in the background meanwhile, and sessions are shared from
   * the start). Resolves at once without `redis`.
   */
  async connect() {
    if (this.#disposed) throw new Error('Broker is disposed');
    if (this.#shared !== undefined) await this.#shared.connected();
  }

  /** 'embedded' or 'extracted' (seed 003). */
  get mode() {
    return this.#runtime.mode;
  }

  /** Extracted mode: each runtime worker's connection state and load ([] when embedded). */
  getRuntimeStatus() {
    return this.#runtime.status();
  }

  // The seed's broker events (broker-events.js), with EventEmitter's listener methods.
  on(event, listener) {
    this.#events.on(event, listener);
    return this;
  }

  addListener(event, listener) {
    return this.on(event, listener);
  }

  once(event, listener) {
    this.#events.once(event, listener);
    return this;
  }

  off(event, listener) {
    this.#events.off(event, listener);
    return this;
  }

  removeListener(event, listener) {
    return this.off(event, listener);
  }

  removeAllListeners(...event) {
    this.#events.removeAllListeners(...event);
    return this;
  }

  listenerCount(event) {
    return this.#events.listenerCount(event);
  }

  get [INTERNALS]() {
    return { sessions: this.#sessions, config: this.#config, shared: this.#shared };
  }

  tool(name, def) {
    if (def === null || typeof def !== 'object') throw new TypeError(`Tool "${name}" definition must be an object`);
    this.#registry.register({ ...def, name });
    return this;
  }

  tools(defs) {
    if (defs === null || typeof defs !== 'object') throw new TypeError('Tool definitions must be an object of name → definition');
    for (const [name, def] of Object.entries(defs)) this.tool(name, def);
    return this;
  }

  hasTool(name) {
    return this.#registry.has(name);
  }

  listTools() {
    return this.#registry.list();
  }

  removeTool(name) {
    return this.#registry.unregister(name);
  }

  secret(key, value) {
    this.#registry.setSecret(key, value);
    return this;
  }

  secrets(record) {
    if (record === null || typeof record !== 'object') throw new TypeError('Secrets must be an object of key → value');
    for (const [key, value] of Object.entries(record)) this.#registry.setSecret(key, value);
    return this;
  }

  hasSecret(key) {
    return this.#registry.hasSecret(key);
  }

  removeSecret(key) {
    return this.#registry.removeSecret(key);
  }

  // Adds a source over this broker's tools; not started (the caller runs `await source.start()`).
  openapi(config) {
    if (this.#disposed) throw new Error('Broker is disposed');
    // Required here: most brokers never load OpenAPI tools, and importing should not pay for it.
    const { OpenApiSource } = require('./openapi/openapi-source');
    const source = new OpenApiSource(this.#registry, config);
    this.#sources.push(source);
    return source;
  }

  getOpenApiSources() {
    return this.#sources;
  }

  createSession(config) {
    if (this.#disposed) throw new Error('Broker is disposed');
    const { session } = this.#sessions.create(resolveSessionOptions(config, this.#sessions._defaults));
    this.#events.sessionCreated(session);
    return session;
  }

  getSession(sessionId) {
    return this.#sessions.get(sessionId);
  }

  listSessions() {
    return this.#sessions.list();
  }

  listActiveSessions() {
    return this.#sessions.listActive();
  }

  terminateSession(sessionId, reason) {
    return this.#sessions.terminate(sessionId, reason);
  }

  /**
   * The original's `Promise<SessionFinalResult>`, which is also async-iterable over the run's
   * events (seed API, C2 in docs/compatibility.md). Seed option keys `timeout`, `maxToolCalls`, `context` and
   * `filter` are accepted beside the original's `session` and `onEvent`.
   */
  execute(code, options = {}) {
    const run = { session: undefined, finished: false, filter: ALL_EVENTS };
    return attachEventStream(this.#execute(code, options, run), run);
  }

  async #execute(code, options, run) {
    if (this.#disposed) throw new Error('Broker is disposed');
    if (typeof code !== 'string') {
      throw new TypeError(`Script code must be a string, got ${code === null ? 'null' : typeof code}`);
    }
    if (options === null || typeof options !== 'object') throw new TypeError('execute options must be an object');
    // Checked before the session exists, so a bad listener cannot leak a session.
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
      throw new TypeError('onEvent handler must be a function');
    }
    const { config, filter } = resolveExecuteOptions(options, this.#sessions._defaults);
    const { session } = this.#sessions.create(config);
    this.#events.sessionCreated(session);
    run.session = session;
    run.filter = filter;
    const onEvent = options.onEvent;
    if (onEvent !== undefined) {
      session.onEvent(filter === ALL_EVENTS ? onEvent : (event) => filter(event) && onEvent(event));
    }
    try {
      return await session.execute(code);
    } finally {
      run.finished = true;
      session.dispose();
      this.#sessions._remove(session);
    }
  }

  // Seed API: the result of a tool the client runs itself (`externalTools`).
  async submitToolResult(sessionId, callId, result, error) {
    const session = this.#sessions.get(sessionId);
    if (session === undefined) throw new Error(`Session ${sessionId} not found`);
    session._submitToolResult(callId, result, error);
  }

  /**
   * Seed API (S001 in docs/compatibility.md): runs a call that a session's 'tool_call' listener received (or any
   * `{name, args}`) through the broker's tools as the automatic loop would: validation,
   * secrets, middleware, `toolHandler`, broker events, the call's abort signal. Resolves to the
   * tool's value; rejects with an Error carrying the failure's `code` (UNKNOWN_TOOL,
   * VALIDATION_ERROR, SECRET_ERROR, the handler's own).
   */
  async executeToolCall(sessionId, call) {
    if (this.#disposed) throw new Error('Broker is disposed');
    const session = this.#sessions.get(sessionId);
    if (session === undefined) throw new Error(`Session ${sessionId} not found`);
    if (call === null || typeof call !== 'object' || typeof call.name !== 'string') {
      throw new TypeError('executeToolCall(sessionId, call) needs a call {id, name, args}, as a tool_call listener gets it');
    }
    const signal = session._toolCallSignal(call.id) ?? new AbortController().signal;
    const context = { sessionId: session.sessionId, callId: call.id, signal };
    const result = await this.#sessions._registry.execute(call.name, call.args, context);
    if (!result.success) throw Object.assign(new Error(result.error.message), { code: result.error.code });
    return result.value;
  }

  stats() {
    return {
      tools: this.#registry.size,
      activeSessions: this.#sessions.activeCount,
      totalSessions: this.#sessions.totalCount,
    };
  }

  cleanup() {
    return this.#sessions.cleanup();
  }

  async dispose() {
    await this[DISPOSE_WITHIN](LEAVE_TIMEOUT_MS);
  }

  async [DISPOSE_WITHIN](leaveTimeoutMs) {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const source of this.#sources) source.dispose();
    await this.#sessions.dispose();
    this.#runtime.close();
    this.#registry.clear();
    this.#registry.clearSecrets();
    // Every session has its final event now: give them time to reach Redis, then leave.
    if (this.#shared !== undefined) await this.#shared.leave(leaveTimeoutMs);
  }

  get isDisposed() {
    return this.#disposed;
  }
}

function createBroker(config) {
  return new Broker(config);
}

// Seed API (S001 in docs/compatibility.md imports it beside Broker): `broker.createSession(config)` as a function.
function createSession(broker, config) {
  if (!(broker instanceof Broker)) throw new TypeError('createSession(broker, config) needs a Broker');
  return broker.createSession(config);
}

module.exports = { Broker, createBroker, createSession, INTERNALS, BROKER_EVENTS, DISPOSE_WITHIN };
