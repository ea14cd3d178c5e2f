// The seed documents' option keys on `execute()` and `createSession()` (C3, C28 in docs/compatibility.md),
// mapped onto the original's session config. They are additive: without them the config
// is passed on untouched, so the original's shallow merge (Q1 in docs/compatibility.md) decides as before; with
// them, the limits they change are those the session would otherwise run with.
'use strict';

function nonNegative(owner, key, value) {
  if (typeof value !== 'number' || !(value >= 0)) {
    throw new TypeError(`${owner} option "${key}" must be a non-negative number`);
  }
  return value;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// `timeout` (the script timeout, `limits.toolTimeoutMs`) and `maxToolCalls` over `base`,
// a session config; `defaults` are the broker's, used when `base` has no `limits` key.
function withLimitKeys(owner, base, defaults, { timeout, maxToolCalls }) {
  if (timeout === undefined && maxToolCalls === undefined) return base;
  const limits = { ...('limits' in base ? base.limits : defaults.limits) };
  if (timeout !== undefined) limits.toolTimeoutMs = nonNegative(owner, 'timeout', timeout);
  if (maxToolCalls !== undefined) limits.maxToolCalls = nonNegative(owner, 'maxToolCalls', maxToolCalls);
  return { ...base, limits };
}

// `context` (seed): read-only globals for this run, over the enclave's own globals.
function withContext(base, defaults, context) {
  if (context === undefined) return base;
  if (!isObject(context)) throw new TypeError('execute option "context" must be an object');
  const enclave = ('enclaveConfig' in base ? base.enclaveConfig : defaults.enclaveConfig) ?? {};
  return { ...base, enclaveConfig: { ...enclave, globals: { ...enclave.globals, ...context } } };
}

const FILTER_SHAPE = 'an EventFilter, a filter config ({mode, rules}) or {types?, blockedTypes?}';

function typeList(key, value) {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((t) => typeof t === 'string')) {
    throw new TypeError(`execute option "filter.${key}" must be an array of event types`);
  }
  return value;
}

// `filter` (seed): which events the iterator and `onEvent` see. `session_init` and `final`
// always pass, as with every EventFilter.
const ALL_EVENTS = () => true;

function eventPredicate(filter) {
  if (filter === undefined || filter === null) return ALL_EVENTS;
  if (typeof filter === 'object' && typeof filter.shouldSend === 'function') return (event) => filter.shouldSend(event);
  if (!isObject(filter)) throw new TypeError(`execute option "filter" must be ${FILTER_SHAPE}`);
  // Required here: filters are rare on execute(), and importing should not pay for them.
  const { EventFilter, createTypeFilter } = require('./event-filter');
  const filters = [];
  if ('rules' in filter || 'mode' in filter) {
    filters.push(new EventFilter({ config: filter }));
  } else {
    const types = typeList('types', filter.types);
    const blocked = typeList('blockedTypes', filter.blockedTypes);
    if (types !== undefined) filters.push(new EventFilter({ config: createTypeFilter('include', types) }));
    if (blocked !== undefined) filters.push(new EventFilter({ config: createTypeFilter('exclude', blocked) }));
    const unknown = Object.keys(filter).filter((key) => key !== 'types' && key !== 'blockedTypes');
    if (unknown.length > 0) throw new TypeError(`execute option "filter" must be ${FILTER_SHAPE}`);
  }
  return (event) => filters.every((f) => f.shouldSend(event));
}

// `execute(code, options)`: the session config to create and the event predicate.
function resolveExecuteOptions(options, defaults) {
  const { session, timeout, maxToolCalls, context, filter } = options;
  const base = session ?? {};
  if (!isObject(base)) throw new TypeError('Session config must be an object');
  const config = withContext(withLimitKeys('execute', base, defaults, { timeout, maxToolCalls }), defaults, context);
  return { config, filter: eventPredicate(filter) };
}

// `createSession(config)`: `timeout` and `maxToolCalls` at the top level (seed S001 in docs/compatibility.md).
function resolveSessionOptions(config, defaults) {
  if (!isObject(config)) return config;
  const { timeout, maxToolCalls, ...rest } = config;
  if (timeout === undefined && maxToolCalls === undefined) return config;
  return withLimitKeys('createSession', rest, defaults, { timeout, maxToolCalls });
}

module.exports = { resolveExecuteOptions, resolveSessionOptions, ALL_EVENTS };
