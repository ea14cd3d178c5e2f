// Broker: the original's entry point (b/broker.ts): tools, secrets, sessions, execute.
'use strict';

const { ToolRegistry } = require('./tool-registry');
const { SessionManager } = require('./session-manager');

class Broker {
  #registry = new ToolRegistry();
  #sessions;
  #disposed = false;
  #sources = [];

  constructor(config = {}) {
    if (config === null || typeof config !== 'object') throw new TypeError('Broker config must be an object');
    const sessions = config.sessions ?? {};
    this.#sessions = new SessionManager(this.#registry, {
      ...sessions,
      defaultSessionConfig: { limits: config.limits, enclaveConfig: config.enclave },
    });
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

  getOpenApiSources() {
    return this.#sources;
  }

  createSession(config) {
    if (this.#disposed) throw new Error('Broker is disposed');
    return this.#sessions.create(config).session;
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

  async execute(code, options = {}) {
    if (this.#disposed) throw new Error('Broker is disposed');
    if (typeof code !== 'string') {
      throw new TypeError(`Script code must be a string, got ${code === null ? 'null' : typeof code}`);
    }
    if (options === null || typeof options !== 'object') throw new TypeError('execute options must be an object');
    // Checked before the session exists, so a bad listener cannot leak a session.
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
      throw new TypeError('onEvent handler must be a function');
    }
    const { session } = this.#sessions.create(options.session);
    if (options.onEvent !== undefined) session.onEvent(options.onEvent);
    try {
      return await session.execute(code);
    } finally {
      session.dispose();
      this.#sessions._remove(session);
    }
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
    if (this.#disposed) return;
    this.#disposed = true;
    for (const source of this.#sources) source.dispose();
    await this.#sessions.dispose();
    this.#registry.clear();
    this.#registry.clearSecrets();
  }

  get isDisposed() {
    return this.#disposed;
  }
}

function createBroker(config) {
  return new Broker(config);
}

module.exports = { Broker, createBroker };
