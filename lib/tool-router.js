// ToolRouter (seed API; the original package has none): sends each tool call to the handler
// registered for a matching tool-name pattern (see tool-pattern.js), with an optional
// per-route rate limit and an optional authentication requirement.
//
// Decisions where the seed is silent:
// - Routes are tried in registration order; the first whose pattern matches handles the call,
//   so register specific patterns before broad ones ('db:admin:*' before 'db:**').
// - Registering a pattern that is already registered throws; `unregister` it first. Silently
//   replacing a route would hide a typo or a double registration.
// - `requiresAuth: true` needs a truthy `context.authenticated`. Only that key counts: a
//   `user` or `userId` in the context says who is calling, not that anyone checked.
// - Checks run in this order: route lookup (UNKNOWN_TOOL), authentication (UNAUTHORIZED),
//   rate limit (RATE_LIMITED). A refused call never uses up rate-limit budget.
// - A route's `rateLimit` is one sliding window (see rate-limiter.js) shared by every tool
//   name the route handles and every caller. A call counts when it starts, whether its
//   handler then succeeds or throws.
// - Handlers get `(name, args, context)`: the seed's two arguments plus the call context
//   (for the broker that has sessionId, callId, signal, toolName).
// - `toolHandler(baseContext?)` adapts the router to the Broker's `toolHandler` option. The
//   broker's context has no authentication, so `baseContext` (e.g. `{ authenticated: true }`)
//   is merged beneath it; the broker's own keys win.
'use strict';

const { compileToolPattern } = require('./tool-pattern');
const { SlidingWindow, validateLimit, resolveClock } = require('./rate-limiter');

function routeError(code, message, toolName) {
  const error = new Error(message);
  error.code = code;
  error.toolName = toolName;
  return error;
}

function isRecord(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

class ToolRouter {
  #routes = [];
  #now;

  /** @param {{ clock?: { now(): number } }} [options] clock for rate limits, defaults to Date */
  constructor(options = {}) {
    if (!isRecord(options)) throw new TypeError('ToolRouter options must be an object');
    this.#now = resolveClock(options.clock);
  }

  /**
   * Adds a route after the existing ones.
   * @param {string} pattern
   * @param {{ handler: (name: string, args: unknown, context: object) => unknown,
   *   rateLimit?: { maxCalls: number, windowMs: number }, requiresAuth?: boolean }} definition
   */
  register(pattern, definition) {
    const matches = compileToolPattern(pattern);
    if (!isRecord(definition)) {
      throw new TypeError(`Route "${pattern}": definition must be an object { handler, rateLimit?, requiresAuth? }`);
    }
    const { handler, rateLimit, requiresAuth = false } = definition;
    if (typeof handler !== 'function') throw new TypeError(`Route "${pattern}": handler must be a function`);
    if (typeof requiresAuth !== 'boolean') throw new TypeError(`Route "${pattern}": requiresAuth must be a boolean`);
    const window = rateLimit === undefined ? undefined : new SlidingWindow(validateLimit(rateLimit, `Route "${pattern}": rateLimit`));
    if (this.#routes.some((route) => route.pattern === pattern)) {
      throw new Error(`Tool route "${pattern}" is already registered`);
    }
    this.#routes.push({ pattern, matches, handler, requiresAuth, window });
    return this;
  }

  /** Removes the route registered with exactly this pattern; false if there was none. */
  unregister(pattern) {
    const index = this.#routes.findIndex((route) => route.pattern === pattern);
    if (index === -1) return false;
    this.#routes.splice(index, 1);
    return true;
  }

  /** Whether some route would handle `name`. */
  has(name) {
    return this.#routeFor(name) !== undefined;
  }

  /** The registered patterns, in the order they are tried. */
  routes() {
    return this.#routes.map((route) => route.pattern);
  }

  /** Runs the call through the first matching route; rejects with a coded Error when it cannot. */
  async execute(name, args, context = {}) {
    if (typeof name !== 'string') throw new TypeError('Tool name must be a string');
    if (context === undefined || context === null) context = {};
    if (typeof context !== 'object') throw new TypeError('Tool call context must be an object');
    const route = this.#routeFor(name);
    if (route === undefined) throw routeError('UNKNOWN_TOOL', `Unknown tool: ${name}`, name);
    if (route.requiresAuth && !context.authenticated) {
      throw routeError('UNAUTHORIZED', `Authentication required for tool: ${name}`, name);
    }
    if (route.window !== undefined) {
      const now = this.#now();
      if (route.window.remaining(now) === 0) throw routeError('RATE_LIMITED', `Rate limit exceeded for ${name}`, name);
      route.window.record(now);
    }
    return await route.handler(name, args, context);
  }

  /**
   * A function for the Broker's `toolHandler` option: `createBroker({ toolHandler: router.toolHandler() })`.
   * @param {object} [baseContext] merged beneath the broker's context, e.g. { authenticated: true }
   */
  toolHandler(baseContext = {}) {
    if (!isRecord(baseContext)) throw new TypeError('baseContext must be an object');
    return (args, context) => {
      const callContext = { ...baseContext, ...(isRecord(context) ? context : {}) };
      return this.execute(callContext.toolName, args, callContext);
    };
  }

  #routeFor(name) {
    if (typeof name !== 'string') return undefined;
    return this.#routes.find((route) => route.matches(name));
  }
}

module.exports = { ToolRouter };
