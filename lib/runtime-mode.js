// The broker's `mode` (seed 003): 'embedded' (the default) runs scripts in this process's
// engine pool; 'extracted' runs them on runtime workers (`createRuntimeWorker`, the
// `enclave-runtime` CLI) over WebSocket, while tools, secrets, middleware and the sessions
// themselves stay in the broker. Everything here is option handling: the connections,
// placement and faults live in the Rust core (crates/core/src/remote/).
'use strict';

const native = require('./native');
const { show } = require('./config');
const { unwrap, toException } = require('./binding-error');

const MODES = ['embedded', 'extracted'];
const CONNECTION_KEYS = ['connectTimeoutMs', 'heartbeatIntervalMs', 'maxMessageBytes', 'reconnect'];

function optionalNumber(name, value, { positive = false } = {}) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(positive ? value > 0 : value >= 0)) {
    throw new TypeError(`${name} must be a ${positive ? 'positive' : 'non-negative'} number, got ${show(value)}`);
  }
  return value;
}

function runtimeUrls(config) {
  const { runtimeUrl, runtimeUrls: urls } = config;
  if (runtimeUrl !== undefined && urls !== undefined) throw new TypeError('Give runtimeUrl or runtimeUrls, not both');
  const list = urls !== undefined ? urls : runtimeUrl === undefined ? [] : [runtimeUrl];
  if (!Array.isArray(list) || list.some((url) => typeof url !== 'string' || url === '')) {
    throw new TypeError(urls !== undefined ? 'runtimeUrls must be an array of ws:// URLs' : 'runtimeUrl must be a ws:// URL string');
  }
  if (list.length === 0) {
    throw new TypeError(
      "mode 'extracted' needs a runtime worker: give runtimeUrl (e.g. 'ws://localhost:3001') or runtimeUrls, and start one with createRuntimeWorker() or the enclave-runtime CLI",
    );
  }
  return list;
}

function connectionOptions(connection) {
  if (connection === undefined) return {};
  if (connection === null || typeof connection !== 'object') throw new TypeError('runtimeConnection must be an object');
  const unknown = Object.keys(connection).filter((key) => !CONNECTION_KEYS.includes(key));
  if (unknown.length > 0) throw new TypeError(`Unknown runtimeConnection option "${unknown[0]}"`);
  const reconnect = connection.reconnect ?? {};
  if (reconnect === null || typeof reconnect !== 'object') throw new TypeError('runtimeConnection.reconnect must be an object');
  return {
    connectTimeoutMs: optionalNumber('runtimeConnection.connectTimeoutMs', connection.connectTimeoutMs, { positive: true }),
    heartbeatIntervalMs: optionalNumber('runtimeConnection.heartbeatIntervalMs', connection.heartbeatIntervalMs),
    maxMessageBytes: optionalNumber('runtimeConnection.maxMessageBytes', connection.maxMessageBytes, { positive: true }),
    reconnectInitialDelayMs: optionalNumber('runtimeConnection.reconnect.initialDelayMs', reconnect.initialDelayMs, { positive: true }),
    reconnectMaxDelayMs: optionalNumber('runtimeConnection.reconnect.maxDelayMs', reconnect.maxDelayMs, { positive: true }),
  };
}

const EMBEDDED = Object.freeze({
  mode: 'embedded',
  start() {},
  status: () => [],
  close() {},
});

// Checks the mode options (a TypeError for bad ones, before the broker builds anything) and
// returns what the broker starts once it is built: `start(nativeManager)` connects to the
// workers and runs the manager's sessions there; `status()` and `close()` follow.
function resolveRuntimeMode(config) {
  const mode = config.mode ?? 'embedded';
  if (!MODES.includes(mode)) throw new TypeError(`mode must be 'embedded' or 'extracted', got ${show(mode)}`);
  if (mode === 'embedded') {
    for (const key of ['runtimeUrl', 'runtimeUrls', 'runtimeToken', 'runtimeConnection']) {
      if (config[key] !== undefined) throw new TypeError(`${key} is only used with mode: 'extracted'`);
    }
    return EMBEDDED;
  }
  const urls = runtimeUrls(config);
  if (config.runtimeToken !== undefined && (typeof config.runtimeToken !== 'string' || config.runtimeToken === '')) {
    throw new TypeError('runtimeToken must be a non-empty string');
  }
  const options = { urls, token: config.runtimeToken, ...connectionOptions(config.runtimeConnection) };
  // Bad URLs (not ws://, wss://) are refused now, with the core's message.
  const refused = native.BindingRuntimeClient.checkUrls(urls);
  if (refused) throw toException(refused);
  let client;
  return {
    mode,
    start(manager) {
      client = unwrap(native.BindingRuntimeClient.connect(options));
      client.attach(manager);
    },
    status: () => (client === undefined ? [] : JSON.parse(client.statusJson())),
    close() {
      if (client !== undefined) client.close();
    },
  };
}

module.exports = { resolveRuntimeMode };
