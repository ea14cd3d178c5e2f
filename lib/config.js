// Turns the original's session configuration (`BrokerSessionConfig`, already merged the
// original's shallow way) into what the native layer takes, with clear errors for bad input.
'use strict';

const native = require('./native');
const { unwrap } = require('./binding-error');
const { SECURITY_LEVEL_MAX_DEPTH } = require('./constants');
const { createValueCodec } = require('./value-codec');

const codec = createValueCodec();

const DANGEROUS_KEYS = ['__proto__', 'constructor', 'prototype'];
const MAX_GLOBALS_DEPTH = 10;

function show(value) {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  try {
    return String(value);
  } catch {
    return typeof value;
  }
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// Which keys a `limits` object may have and what each takes is the core's rule
// (PartialLimits::from_inputs): it answers the limits, or the TypeError to throw.
function resolveLimits(limits) {
  if (limits === undefined || limits === null) return undefined;
  if (!isObject(limits)) throw new TypeError('Session limits must be an object');
  const checked = unwrap(native.checkLimits(limits));
  const out = {};
  for (const [key, value] of Object.entries(checked)) if (value !== undefined && value !== null) out[key] = value;
  return out;
}

function checkGlobal(key, value, depth) {
  if (depth > MAX_GLOBALS_DEPTH) {
    throw new Error(`Custom global "${key}" exceeds maximum depth (${MAX_GLOBALS_DEPTH})`);
  }
  if (typeof value === 'function') {
    throw new Error(`Custom global "${key}" contains a function. Globals are copied into the sandbox as plain data.`);
  }
  if (typeof value === 'symbol') throw new Error(`Custom global "${key}" contains a symbol`);
  if (value === null || typeof value !== 'object') return;
  for (const name of Reflect.ownKeys(value)) {
    if (typeof name === 'symbol') throw new Error(`Custom global "${key}" has a symbol key`);
    const descriptor = Object.getOwnPropertyDescriptor(value, name);
    if (descriptor.get || descriptor.set) throw new Error(`Custom global "${key}" has a getter or setter`);
    if (DANGEROUS_KEYS.includes(name)) throw new Error(`Custom global "${key}" has a forbidden key "${name}"`);
    checkGlobal(key, descriptor.value, depth + 1);
  }
}

function resolveGlobals(globals, maxDepth) {
  if (globals === undefined || globals === null) return undefined;
  if (!isObject(globals)) throw new TypeError('enclave.globals must be an object');
  for (const key of Object.keys(globals)) {
    if (DANGEROUS_KEYS.includes(key)) throw new Error(`Custom global "${key}" is not allowed`);
    checkGlobal(key, globals[key], 0);
  }
  return codec.toJson(globals, Math.max(maxDepth, MAX_GLOBALS_DEPTH + 1), 'global');
}

const SECURITY_LEVELS = Object.keys(SECURITY_LEVEL_MAX_DEPTH);

// The original's four levels; anything else is refused rather than read as STANDARD.
function checkSecurityLevel(level, key) {
  if (!SECURITY_LEVELS.includes(level)) {
    throw new TypeError(`${key} must be one of ${SECURITY_LEVELS.map((l) => `'${l}'`).join(', ')}, got ${show(level)}`);
  }
  return level;
}

const SIDECAR_SIZES = ['maxTotalSize', 'maxReferenceSize', 'extractionThreshold', 'maxResolvedSize', 'maxReferenceCount'];

// `enclave.sidecar` (the original's reference sidecar): off unless `enabled: true`; each
// given limit replaces the security level's (the core's REFERENCE_CONFIGS), except
// `maxResolutionDepth`, which stays the level's as in the original.
function resolveSidecar(sidecar) {
  if (sidecar === undefined || sidecar === null) return undefined;
  if (!isObject(sidecar)) throw new TypeError('enclave.sidecar must be an object');
  if (sidecar.enabled !== true) return undefined;
  const out = {};
  for (const key of SIDECAR_SIZES) {
    const value = sidecar[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !(value >= 0)) {
      throw new TypeError(`enclave.sidecar.${key} must be a non-negative number, got ${show(value)}`);
    }
    out[key] = value;
  }
  if (sidecar.allowComposites !== undefined) {
    if (typeof sidecar.allowComposites !== 'boolean') {
      throw new TypeError(`enclave.sidecar.allowComposites must be a boolean, got ${show(sidecar.allowComposites)}`);
    }
    out.allowComposites = sidecar.allowComposites;
  }
  return out;
}

function resolveEnclave(enclave) {
  if (enclave === undefined || enclave === null) enclave = {};
  if (!isObject(enclave)) throw new TypeError('enclaveConfig must be an object');
  const level = enclave.securityLevel === undefined ? 'STANDARD' : checkSecurityLevel(enclave.securityLevel, 'enclave.securityLevel');
  const maxDepth = enclave.maxSanitizeDepth ?? SECURITY_LEVEL_MAX_DEPTH[level];
  if (typeof maxDepth !== 'number' || !(maxDepth >= 0)) {
    throw new TypeError(`enclave.maxSanitizeDepth must be a non-negative number, got ${show(maxDepth)}`);
  }
  const out = { maxDepth: Math.floor(maxDepth) };
  if (enclave.memoryLimit !== undefined) {
    if (typeof enclave.memoryLimit !== 'number' || !(enclave.memoryLimit >= 0)) {
      throw new TypeError(`enclave.memoryLimit must be a non-negative number of bytes, got ${show(enclave.memoryLimit)}`);
    }
    // 0 turned the original's memory tracking off; here it means the default heap limit.
    if (enclave.memoryLimit > 0) out.memoryLimit = enclave.memoryLimit;
  }
  if (enclave.maxResultBytes !== undefined) {
    if (typeof enclave.maxResultBytes !== 'number' || !(enclave.maxResultBytes > 0)) {
      throw new TypeError(`enclave.maxResultBytes must be a positive number, got ${show(enclave.maxResultBytes)}`);
    }
    out.maxResultBytes = enclave.maxResultBytes;
  }
  const globalsJson = resolveGlobals(enclave.globals, out.maxDepth);
  if (globalsJson !== undefined) out.globalsJson = globalsJson;
  const sidecar = resolveSidecar(enclave.sidecar);
  if (sidecar !== undefined) Object.assign(out, { sidecar, securityLevel: level });
  return out;
}

// Tools the client runs itself (seed API: results come through submitToolResult).
function resolveExternalTools(value) {
  if (value === undefined || value === null || value === false) return undefined;
  if (value === true) return ['*'];
  if (Array.isArray(value) && value.every((name) => typeof name === 'string')) return value;
  throw new TypeError('externalTools must be true or an array of tool names');
}

// Seed API (`allowedTools`): glob patterns of the tools a session may call.
function resolveAllowedTools(value) {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value) && value.every((pattern) => typeof pattern === 'string')) return value;
  throw new TypeError('allowedTools must be an array of tool name patterns');
}

// The principal (a user id) a SessionHandler creates a session for: kept with the session in
// the core, so brokers sharing state (the `redis` option) know its owner. Not public API.
const SESSION_OWNER = Symbol('sessionOwner');

// Returns `{binding, maxDepth}`: the native config and the depth limit for tool results.
function resolveSessionConfig(config) {
  if (config === undefined || config === null) config = {};
  if (!isObject(config)) throw new TypeError('Session config must be an object');
  const binding = {};
  // null, like undefined, means "generate one" (the original's `config.sessionId ?? generateSessionId()`).
  if (config.sessionId !== undefined && config.sessionId !== null) {
    if (typeof config.sessionId !== 'string') {
      throw new TypeError(`sessionId must be a string, got ${show(config.sessionId)}`);
    }
    binding.sessionId = config.sessionId;
  }
  const limits = resolveLimits(config.limits);
  if (limits !== undefined) binding.limits = limits;
  const enclave = resolveEnclave(config.enclaveConfig);
  Object.assign(binding, enclave);
  const externalTools = resolveExternalTools(config.externalTools);
  if (externalTools !== undefined) binding.externalTools = externalTools;
  const allowedTools = resolveAllowedTools(config.allowedTools);
  if (allowedTools !== undefined) binding.allowedTools = allowedTools;
  if (typeof config[SESSION_OWNER] === 'string') binding.ownerUserId = config[SESSION_OWNER];
  return { binding, maxDepth: enclave.maxDepth };
}

module.exports = { resolveSessionConfig, resolveLimits, resolveExternalTools, checkSecurityLevel, show, SESSION_OWNER };
