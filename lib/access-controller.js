// AccessController (seed API; the original package has none): allow/deny rules over tool-name
// patterns (see tool-pattern.js), checked with `check(toolName, context)`.
//
// Decisions where the seed is silent:
// - Rules are tried in order (constructor rules, then `addRule` calls) and the first whose
//   pattern matches decides; later rules are not consulted. No rule matches → defaultPolicy,
//   which is 'deny' unless set.
// - `unless` flips that rule's decision when every key in it is an own property of the context
//   with a strictly equal (===) value. Inherited properties never count, so `{}` does not
//   satisfy `unless: { constructor: Object }` and a polluted Object.prototype cannot grant access.
// - An empty `unless` object is rejected: "every key matches" would hold vacuously and always
//   flip the rule, which is never what was meant.
// - A missing or null context is `{}`; other non-objects are a TypeError, as is a non-string
//   tool name (an access check should fail loudly, not guess).
// - Rules are copied when added, so changing the caller's objects later has no effect.
'use strict';

const { compileToolPattern } = require('./tool-pattern');

const POLICIES = ['deny', 'allow'];

function isPlainRecord(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function compileRule(rule) {
  if (!isPlainRecord(rule)) throw new TypeError('Access rule must be an object { pattern, allow, unless? }');
  const matches = compileToolPattern(rule.pattern);
  if (typeof rule.allow !== 'boolean') {
    throw new TypeError(`Access rule "${rule.pattern}": allow must be a boolean`);
  }
  let unless;
  if (rule.unless !== undefined) {
    if (!isPlainRecord(rule.unless)) {
      throw new TypeError(`Access rule "${rule.pattern}": unless must be an object of context values`);
    }
    unless = Object.entries(rule.unless);
    if (unless.length === 0) {
      throw new TypeError(`Access rule "${rule.pattern}": unless must name at least one context key`);
    }
  }
  return { matches, allow: rule.allow, unless };
}

function conditionHolds(unless, context) {
  return unless.every(([key, value]) => Object.hasOwn(context, key) && context[key] === value);
}

function resolveContext(context) {
  if (context === undefined || context === null) return {};
  if (typeof context !== 'object') throw new TypeError('Access context must be an object');
  return context;
}

class AccessController {
  #defaultAllow;
  #rules = [];

  /**
   * @param {{ defaultPolicy?: 'deny' | 'allow', rules?: Array<{ pattern: string, allow: boolean,
   *   unless?: Record<string, unknown> }> }} [options]
   */
  constructor(options = {}) {
    if (!isPlainRecord(options)) throw new TypeError('AccessController options must be an object');
    const { defaultPolicy = 'deny', rules = [] } = options;
    if (!POLICIES.includes(defaultPolicy)) {
      throw new TypeError(`defaultPolicy must be 'deny' or 'allow', got ${typeof defaultPolicy === 'string' ? JSON.stringify(defaultPolicy) : typeof defaultPolicy}`);
    }
    if (!Array.isArray(rules)) throw new TypeError('rules must be an array');
    this.#defaultAllow = defaultPolicy === 'allow';
    for (const rule of rules) this.addRule(rule);
  }

  /** Appends a rule; it is consulted after the existing ones. */
  addRule(rule) {
    this.#rules.push(compileRule(rule));
    return this;
  }

  /** Whether `toolName` may be called in `context`. */
  check(toolName, context = {}) {
    if (typeof toolName !== 'string') throw new TypeError('Tool name must be a string');
    const facts = resolveContext(context);
    for (const rule of this.#rules) {
      if (!rule.matches(toolName)) continue;
      const flipped = rule.unless !== undefined && conditionHolds(rule.unless, facts);
      return flipped ? !rule.allow : rule.allow;
    }
    return this.#defaultAllow;
  }

  /** Throws an Error with code 'ACCESS_DENIED' when `check` would answer false. */
  assert(toolName, context = {}) {
    if (this.check(toolName, context)) return;
    const error = new Error(`Access denied to tool: ${toolName}`);
    error.code = 'ACCESS_DENIED';
    error.toolName = toolName;
    throw error;
  }
}

module.exports = { AccessController };
