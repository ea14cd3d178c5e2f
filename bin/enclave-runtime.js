#!/usr/bin/env node
// enclave-runtime: a runtime worker as a process (the original's CLI, plus its documented
// environment variables). Brokers in extracted mode connect to ws://HOST:PORT/ws.
'use strict';

const path = require('node:path');
const { createRuntimeWorker, RUNTIME_DEFAULTS } = require(path.join(__dirname, '..', 'lib', 'runtime-worker.js'));

const HELP = `Enclave Runtime Worker

Usage:
  enclave-runtime [options]

Options:
  --port <port>               Port to listen on (default: ${RUNTIME_DEFAULTS.port}; 0 picks a free one)
  --host <host>               Host to bind to (default: ${RUNTIME_DEFAULTS.host})
  --ws-path <path>            WebSocket path (default: ${RUNTIME_DEFAULTS.wsPath})
  --max-sessions <n>          Sessions run at once (default: ${RUNTIME_DEFAULTS.maxSessions})
  --auth-token <token>        Token brokers must present (comma-separated for several)
  --timeout <ms>              Default script timeout for requests that give none
  --max-tool-calls <n>        Default maxToolCalls for requests that give none
  --max-message-bytes <n>     Largest frame taken from a client (default: 67108864)
  --stop-timeout <ms>         On SIGTERM/SIGINT, how long running sessions may finish (default: 10000)
  --debug                     Log start, stop and stats
  --help, -h                  Show this help

Environment (flags win): ENCLAVE_PORT, ENCLAVE_HOST, ENCLAVE_TIMEOUT, ENCLAVE_MAX_TOOL_CALLS,
ENCLAVE_AUTH_TOKEN (comma-separated), ENCLAVE_MAX_SESSIONS, ENCLAVE_WS_PATH, ENCLAVE_MAX_MESSAGE_BYTES.

Examples:
  enclave-runtime --port 3001
  ENCLAVE_AUTH_TOKEN=s3cret enclave-runtime --port 8080 --max-sessions 50
`;

function fail(message) {
  process.stderr.write(`enclave-runtime: ${message}\n`);
  process.exit(1);
}

function integer(name, text, min = 0) {
  const value = Number(text);
  if (text === undefined || text === '' || !Number.isInteger(value) || value < min) fail(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(text)}`);
  return value;
}

function parse(argv, env) {
  const options = {
    port: env.ENCLAVE_PORT,
    host: env.ENCLAVE_HOST,
    wsPath: env.ENCLAVE_WS_PATH,
    maxSessions: env.ENCLAVE_MAX_SESSIONS,
    token: env.ENCLAVE_AUTH_TOKEN,
    timeout: env.ENCLAVE_TIMEOUT,
    maxToolCalls: env.ENCLAVE_MAX_TOOL_CALLS,
    maxMessageBytes: env.ENCLAVE_MAX_MESSAGE_BYTES,
    stopTimeout: undefined,
    debug: false,
  };
  const flags = {
    '--port': 'port',
    '--host': 'host',
    '--ws-path': 'wsPath',
    '--max-sessions': 'maxSessions',
    '--auth-token': 'token',
    '--timeout': 'timeout',
    '--max-tool-calls': 'maxToolCalls',
    '--stop-timeout': 'stopTimeout',
    '--max-message-bytes': 'maxMessageBytes',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    if (arg === '--debug') {
      options.debug = true;
      continue;
    }
    const key = flags[arg];
    if (key === undefined) fail(`unknown option ${arg} (see --help)`);
    if (i + 1 >= argv.length) fail(`${arg} needs a value`);
    options[key] = argv[++i];
  }
  const defaultLimits = {};
  if (options.timeout !== undefined) defaultLimits.toolTimeoutMs = integer('ENCLAVE_TIMEOUT / --timeout', options.timeout);
  if (options.maxToolCalls !== undefined) defaultLimits.maxToolCalls = integer('ENCLAVE_MAX_TOOL_CALLS / --max-tool-calls', options.maxToolCalls);
  const tokens = options.token === undefined ? [] : options.token.split(',').map((t) => t.trim()).filter(Boolean);
  return {
    config: {
      port: options.port === undefined ? undefined : integer('ENCLAVE_PORT / --port', options.port),
      host: options.host,
      wsPath: options.wsPath,
      maxSessions: options.maxSessions === undefined ? undefined : integer('ENCLAVE_MAX_SESSIONS / --max-sessions', options.maxSessions, 1),
      defaultLimits,
      auth: tokens.length === 0 ? undefined : { tokens },
      maxMessageBytes:
        options.maxMessageBytes === undefined ? undefined : integer('ENCLAVE_MAX_MESSAGE_BYTES / --max-message-bytes', options.maxMessageBytes, 1024),
      debug: options.debug,
    },
    stopTimeout: options.stopTimeout === undefined ? 10000 : integer('--stop-timeout', options.stopTimeout),
  };
}

async function main() {
  // A service outlives whoever reads its output: a closed stdout must not end it.
  process.stdout.on('error', () => {});
  const { config, stopTimeout } = parse(process.argv.slice(2), process.env);
  let worker;
  try {
    worker = createRuntimeWorker(config);
    await worker.start();
  } catch (error) {
    fail(error.message);
  }
  // Signal handlers first: whoever reads the line below may send SIGTERM at once.
  let stopping = false;
  const shutdown = async (signal) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`enclave-runtime: ${signal}, stopping (running sessions get ${stopTimeout} ms)\n`);
    await worker.stop({ timeout: stopTimeout });
    process.stdout.write('enclave-runtime: stopped\n');
    process.exit(0);
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  const stats = worker.getStats();
  const host = config.host ?? RUNTIME_DEFAULTS.host;
  const wsPath = config.wsPath ?? RUNTIME_DEFAULTS.wsPath;
  process.stdout.write(
    `enclave-runtime listening on ws://${host}:${worker.port}${wsPath} (max sessions ${stats.maxSessions}, ${config.auth ? 'token required' : 'no authentication'}, pid ${process.pid})\n`,
  );
  if (!config.auth && host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
    process.stderr.write('enclave-runtime: warning: no ENCLAVE_AUTH_TOKEN set; anyone who reaches this port can run code here\n');
  }
  if (config.debug) {
    setInterval(() => {
      const s = worker.getStats();
      process.stdout.write(`enclave-runtime: ${JSON.stringify({ activeSessions: s.activeSessions, totalSessions: s.totalSessions, connections: s.connections, uptimeMs: s.uptimeMs })}\n`);
    }, 30000).unref();
  }
}

main();
