// OpenApiSource: keeps a tool registry in step with an OpenAPI spec (the original's
// b/openapi/openapi-source.ts, 1.U in docs/compatibility.md). It loads the spec's tools, then polls the spec
// and registers, replaces and removes tools as it changes.
//
// Events: 'toolsUpdated' {added, removed, updated}; 'catalogChanged' {version, addedActions,
// removedActions} when tools were added or removed; 'unhealthy' (failures); 'recovered';
// 'error' (Error) for failures in the background (a poll, or a changed spec that cannot be
// loaded).
'use strict';

const { EventEmitter } = require('node:events');
const { OpenApiSpecPoller } = require('./openapi-spec-poller');
const { OpenApiToolLoader } = require('./openapi-tool-loader');

const DISPOSED_MESSAGE = 'OpenApiSource is disposed';

function isRecord(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isRegistry(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.register === 'function' &&
    typeof value.unregister === 'function' &&
    typeof value.has === 'function'
  );
}

function toError(value) {
  return value instanceof Error ? value : new Error(String(value));
}

class OpenApiSource extends EventEmitter {
  #registry;
  #config;
  #poller;
  #toolNames = new Set();
  #lastUpdate = '';
  #specHash = '';
  #health = 'unknown';
  #disposed = false;
  // The base URL the last full load resolved, for loading later versions of the spec when
  // the config gives none.
  #resolvedBaseUrl;
  // Loads apply one at a time, in the order they were asked for.
  #queue = Promise.resolve();

  // The original takes (toolRegistry, config); (config, toolRegistry) is accepted too.
  constructor(first, second) {
    super();
    const [registry, config] = isRegistry(first) ? [first, second] : [second, first];
    if (!isRegistry(registry)) {
      throw new TypeError('OpenApiSource needs a tool registry (an object with register, unregister and has)');
    }
    if (!isRecord(config)) throw new TypeError('OpenApiSource config must be an object');
    if (typeof config.name !== 'string' || config.name === '') {
      throw new TypeError('OpenApiSource config.name must be a non-empty string');
    }
    if (typeof config.url !== 'string' || config.url === '') {
      throw new TypeError('OpenApiSource config.url must be a non-empty string');
    }
    if (config.loaderOptions !== undefined && !isRecord(config.loaderOptions)) {
      throw new TypeError('OpenApiSource config.loaderOptions must be an object');
    }
    this.#registry = registry;
    this.#config = config;
    // Built now so that a bad poller setting is reported here, not after the first load.
    this.#poller = new OpenApiSpecPoller(config);
    this.#listenToPoller(this.#poller);
  }

  // Loads the spec's tools, then polls for changes. Rejects when the first load fails,
  // and then does not poll.
  async start() {
    if (this.#disposed) throw new Error(DISPOSED_MESSAGE);
    await this.refresh();
    if (this.#disposed) return;
    this.#poller.start();
  }

  stop() {
    if (this.#poller !== null) this.#poller.stop();
  }

  // Fetches the spec and brings the registry in line with it (also for webhook triggers).
  async refresh() {
    if (this.#disposed) throw new Error(DISPOSED_MESSAGE);
    return this.#serialize(async () => {
      const loader = await OpenApiToolLoader.fromURL(this.#config.url, this.#loaderOptions(undefined), this.#config.auth);
      if (this.#disposed) return;
      this.#resolvedBaseUrl = loader.getBaseUrl();
      this.#apply(loader);
      this.#health = 'healthy';
    });
  }

  getToolNames() {
    return new Set(this.#toolNames);
  }

  getStats() {
    return {
      toolCount: this.#toolNames.size,
      lastUpdate: this.#lastUpdate,
      specHash: this.#specHash,
      pollHealth: this.#health,
    };
  }

  getName() {
    return this.#config.name;
  }

  // Stops polling for good. The source's tools stay registered, as in the original.
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#poller.dispose();
    this.#poller = null;
    this.removeAllListeners();
  }

  #listenToPoller(poller) {
    poller.on('changed', (body) => {
      this.#serialize(() => this.#loadChangedSpec(body)).catch((error) => this.#reportError(error));
    });
    poller.on('pollError', (error) => this.#reportError(error));
    poller.on('unhealthy', (failures) => {
      this.#health = 'unhealthy';
      this.emit('unhealthy', failures);
    });
    poller.on('recovered', () => {
      this.#health = 'healthy';
      this.emit('recovered');
    });
  }

  async #loadChangedSpec(body) {
    if (this.#disposed) return;
    let spec;
    try {
      spec = JSON.parse(body);
    } catch (error) {
      throw new Error(`OpenAPI spec from ${this.#config.url} is not valid JSON: ${error.message}`, { cause: error });
    }
    const loader = await OpenApiToolLoader.fromSpec(spec, this.#loaderOptions(this.#resolvedBaseUrl), this.#config.auth);
    if (this.#disposed) return;
    this.#apply(loader);
    this.#health = 'healthy';
  }

  // The loader always names tools after this source; an explicit baseUrl wins over the
  // loader options' one.
  #loaderOptions(fallbackBaseUrl) {
    const options = this.#config.loaderOptions ?? {};
    return {
      ...options,
      baseUrl: this.#config.baseUrl ?? options.baseUrl ?? fallbackBaseUrl,
      sourceName: this.#config.name,
    };
  }

  #serialize(task) {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => {});
    return run;
  }

  #apply(loader) {
    const previous = this.#toolNames;
    const current = loader.getToolNames();
    for (const tool of loader.getTools()) this.#install(tool);
    for (const name of previous) {
      if (!current.has(name)) this.#registry.unregister(name);
    }
    this.#toolNames = current;
    this.#specHash = loader.getSpecHash();
    this.#lastUpdate = new Date().toISOString();

    const added = [...current].filter((name) => !previous.has(name));
    const removed = [...previous].filter((name) => !current.has(name));
    const updated = [...current].filter((name) => previous.has(name));
    this.emit('toolsUpdated', { added, removed, updated });
    if (added.length > 0 || removed.length > 0) {
      this.emit('catalogChanged', { version: this.#specHash, addedActions: added, removedActions: removed });
    }
  }

  // A tool of the same name, whoever registered it, is replaced.
  #install(tool) {
    const registry = this.#registry;
    if (!registry.has(tool.name)) {
      registry.register(tool);
    } else if (typeof registry.replace === 'function') {
      registry.replace(tool);
    } else {
      registry.unregister(tool.name);
      registry.register(tool);
    }
  }

  // A background failure has no caller to reject to. It is emitted as 'error', which
  // EventEmitter turns into a throw when nobody listens (Q14 in docs/compatibility.md); that throw stops here,
  // because escaping a timer or a promise chain would end the host process.
  #reportError(error) {
    if (this.#disposed) return;
    try {
      this.emit('error', toError(error));
    } catch {
      // Nobody listens for 'error', or a listener threw: there is no one else to tell.
    }
  }
}

module.exports = { OpenApiSource };
