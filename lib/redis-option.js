// The `redis` option (seed S000 in docs/compatibility.md: "Redis client for distributed state") as the core's
// connection settings. The Redis traffic itself is the core's own (Rust, on its runtime):
// from a client only its connection options are read, so the client given may stay
// unconnected, and is never closed here.
//
// Accepted: a `redis://` or `rediss://` URL; an ioredis client (`new Redis(url | options)`:
// host, port, username, password, db, tls, keyPrefix); a node-redis client
// (`createClient({url, socket, username, password, database})`). Tuning goes in the
// `cluster` option: `{leaseMs, maxBufferBytes, keyPrefix, commandTimeoutMs}`.
'use strict';

const URL_PATTERN = /^rediss?:\/\//i;
const MIN_LEASE_MS = 500;
const HELP = 'redis must be a redis:// or rediss:// URL, an ioredis client or a node-redis client';

const isObject = (value) => value !== null && typeof value === 'object';

// A TLS `ca`/`cert`/`key` (string, Buffer, or an array of them) as one PEM text.
function pem(value, name) {
  if (value === undefined || value === null) return undefined;
  const parts = Array.isArray(value) ? value : [value];
  return parts
    .map((part) => {
      if (typeof part === 'string') return part;
      if (Buffer.isBuffer(part)) return part.toString('utf8');
      throw new TypeError(`redis TLS option ${name} must be PEM text or a Buffer`);
    })
    .join('\n');
}

function tlsSettings(tls, rejectUnauthorized) {
  if (!tls) return {};
  const options = isObject(tls) ? tls : {};
  return {
    tls: true,
    tlsInsecure: (options.rejectUnauthorized ?? rejectUnauthorized) === false,
    tlsCa: pem(options.ca, 'ca'),
    tlsCert: pem(options.cert, 'cert'),
    tlsKey: pem(options.key, 'key'),
  };
}

function optionalText(value, name) {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new TypeError(`redis ${name} must be a string`);
  return value;
}

function port(value) {
  if (value === undefined || value === null) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new TypeError(`redis port must be 1 to 65535, got ${String(value)}`);
  return n;
}

function db(value) {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`redis db must be a non-negative integer, got ${String(value)}`);
  return value;
}

// ioredis: `client.options` holds the parsed URL and options; `status` is its state.
function fromIoredis(client) {
  const o = client.options;
  if (client.isCluster === true || Array.isArray(o.sentinels)) {
    throw new TypeError('redis: Redis Cluster and Sentinel clients are not supported; give a client of one server, or its URL');
  }
  if (o.path) throw new TypeError('redis: Unix socket connections are not supported; use host and port');
  return {
    host: optionalText(o.host, 'host'),
    port: port(o.port),
    username: optionalText(o.username, 'username'),
    password: optionalText(o.password, 'password'),
    db: db(o.db),
    ...tlsSettings(o.tls),
    prefix: typeof o.keyPrefix === 'string' ? o.keyPrefix : undefined,
  };
}

// node-redis (v4, v5): `client.options` is what createClient() was given.
function fromNodeRedis(client) {
  const o = client.options ?? {};
  const socket = isObject(o.socket) ? o.socket : {};
  if (socket.path) throw new TypeError('redis: Unix socket connections are not supported; use host and port');
  const url = optionalText(o.url, 'url');
  if (url !== undefined && !URL_PATTERN.test(url)) throw new TypeError(HELP);
  return {
    url,
    host: optionalText(socket.host, 'host'),
    port: port(socket.port),
    username: optionalText(o.username, 'username'),
    password: optionalText(o.password, 'password'),
    db: db(o.database),
    ...tlsSettings(socket.tls ? socket : undefined, socket.rejectUnauthorized),
  };
}

function positiveNumber(name, value, min = 0) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`cluster.${name} must be a number of at least ${min}`);
  }
  return value;
}

function clusterSettings(cluster, prefix) {
  if (cluster === undefined) cluster = {};
  if (!isObject(cluster)) throw new TypeError('cluster must be an object');
  const keyPrefix = cluster.keyPrefix;
  if (keyPrefix !== undefined && typeof keyPrefix !== 'string') throw new TypeError('cluster.keyPrefix must be a string');
  return {
    keyPrefix: keyPrefix ?? `${prefix ?? ''}enclave:`,
    leaseMs: positiveNumber('leaseMs', cluster.leaseMs, MIN_LEASE_MS),
    bufferBytes: positiveNumber('maxBufferBytes', cluster.maxBufferBytes),
    commandTimeoutMs: positiveNumber('commandTimeoutMs', cluster.commandTimeoutMs, 1),
  };
}

/**
 * The core's `BindingRedisConfig` for `redis` (and the `cluster` tuning), or undefined
 * without `redis`. Bad values are a TypeError.
 */
function redisConnection(redis, cluster) {
  if (redis === undefined || redis === null) {
    if (cluster !== undefined) throw new TypeError('cluster options need the redis option');
    return undefined;
  }
  let connection;
  if (typeof redis === 'string') {
    if (!URL_PATTERN.test(redis)) throw new TypeError(HELP);
    connection = { url: redis };
  } else if (isObject(redis) && isObject(redis.options) && typeof redis.status === 'string') {
    connection = fromIoredis(redis);
  } else if (isObject(redis) && typeof redis.isOpen === 'boolean') {
    connection = fromNodeRedis(redis);
  } else {
    throw new TypeError(HELP);
  }
  const { prefix, ...rest } = connection;
  return { ...rest, ...clusterSettings(cluster, prefix) };
}

module.exports = { redisConnection };
