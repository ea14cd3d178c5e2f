// RateLimiter (seed API; the original package has none): sliding-window call limits,
// global, per session and per tool pattern, checked with `allow(sessionId, toolName)`.
//
// Decisions where the seed is silent:
// - Windows slide: a call made at time t counts against its limits while now < t + windowMs.
//   Timestamps are kept, so there is no burst of 2 × maxCalls at a fixed-window boundary.
// - `allow` records a call only when every applicable limit has room, and then all of them
//   count it. A refused call counts nowhere, so a client that keeps retrying is not locked
//   out for longer than the window.
// - `perTool` limits apply across all sessions, one budget per pattern: with
//   'expensive:*': {maxCalls: 10}, all 'expensive:…' tools share 10 calls per window. Every
//   matching pattern applies, not just the first (each is a limit the call must respect).
//   Per-session budgets are what `perSession` is for.
// - `reset(sessionId)` clears that session's per-session budget only (global and per-tool
//   budgets are shared by everyone); `reset()` clears everything.
// - `remaining` is Infinity when no limit applies. It never records a call.
// - Memory stays bounded: a budget whose calls have all expired is deleted when it is next
//   looked at, and once per longest window every budget is swept, so sessions that never come
//   back do not accumulate.
// - A clock that goes backwards never un-counts a call: timestamps are kept non-decreasing.
// - `maxCalls` must be a positive integer and `windowMs` a positive finite number; a limit
//   of zero calls is an access-control decision, not a rate (see AccessController).
'use strict';

const { compileToolPattern } = require('./tool-pattern');

function validateLimit(limit, label) {
  if (limit === null || typeof limit !== 'object' || Array.isArray(limit)) {
    throw new TypeError(`${label} must be an object { maxCalls, windowMs }`);
  }
  const { maxCalls, windowMs } = limit;
  if (!Number.isSafeInteger(maxCalls) || maxCalls < 1) {
    throw new TypeError(`${label}.maxCalls must be a positive integer`);
  }
  if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs <= 0) {
    throw new TypeError(`${label}.windowMs must be a positive finite number`);
  }
  return { maxCalls, windowMs };
}

// Returns a function reading the clock, checking what it answers.
function resolveClock(clock) {
  if (clock === undefined) clock = Date;
  if (clock === null || (typeof clock !== 'object' && typeof clock !== 'function') || typeof clock.now !== 'function') {
    throw new TypeError('clock must be an object with a now() method');
  }
  return () => {
    const now = clock.now();
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError('clock.now() must return a finite number');
    return now;
  };
}

/** The calls made within the last `windowMs`, up to `maxCalls` of them. */
class SlidingWindow {
  #maxCalls;
  #windowMs;
  #timestamps = [];

  constructor(limit) {
    ({ maxCalls: this.#maxCalls, windowMs: this.#windowMs } = validateLimit(limit, 'limit'));
  }

  /** Forgets calls that have left the window. */
  prune(now) {
    const timestamps = this.#timestamps;
    let expired = 0;
    while (expired < timestamps.length && timestamps[expired] + this.#windowMs <= now) expired++;
    if (expired > 0) timestamps.splice(0, expired);
  }

  remaining(now) {
    this.prune(now);
    return Math.max(0, this.#maxCalls - this.#timestamps.length);
  }

  record(now) {
    const last = this.#timestamps[this.#timestamps.length - 1];
    this.#timestamps.push(last !== undefined && last > now ? last : now);
  }

  get isEmpty() {
    return this.#timestamps.length === 0;
  }
}

// The one key of the global budget's store.
const GLOBAL_KEY = 'global';

class RateLimiter {
  #now;
  #global;
  #perSession;
  #toolRules = [];
  // Budgets in use, created on a call's first record and deleted once empty.
  #globalStore = new Map();
  #sessionStore = new Map();
  #toolStore = new Map();
  #sweepEveryMs = 0;
  #lastSweep;

  /**
   * @param {{ global?: {maxCalls: number, windowMs: number}, perSession?: {maxCalls: number, windowMs: number},
   *   perTool?: Record<string, {maxCalls: number, windowMs: number}> }} [options]
   * @param {{ now(): number }} [clock] defaults to Date
   */
  constructor(options = {}, clock = undefined) {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new TypeError('RateLimiter options must be an object');
    }
    this.#now = resolveClock(clock);
    const windows = [];
    if (options.global !== undefined) {
      this.#global = validateLimit(options.global, 'global');
      windows.push(this.#global.windowMs);
    }
    if (options.perSession !== undefined) {
      this.#perSession = validateLimit(options.perSession, 'perSession');
      windows.push(this.#perSession.windowMs);
    }
    if (options.perTool !== undefined) {
      const perTool = options.perTool;
      if (perTool === null || typeof perTool !== 'object' || Array.isArray(perTool)) {
        throw new TypeError('perTool must be an object mapping tool patterns to { maxCalls, windowMs }');
      }
      for (const [pattern, limit] of Object.entries(perTool)) {
        const matches = compileToolPattern(pattern);
        const checked = validateLimit(limit, `perTool[${JSON.stringify(pattern)}]`);
        this.#toolRules.push({ pattern, matches, limit: checked });
        windows.push(checked.windowMs);
      }
    }
    this.#sweepEveryMs = windows.length > 0 ? Math.max(...windows) : 0;
    this.#lastSweep = this.#now();
  }

  /**
   * Whether a call of `toolName` by `sessionId` fits every applicable limit; if it does,
   * the call is counted against all of them.
   */
  allow(sessionId, toolName) {
    checkCall(sessionId, toolName);
    const now = this.#now();
    this.#sweepIfDue(now);
    const budgets = this.#budgetsFor(sessionId, toolName);
    if (!budgets.every((budget) => this.#remainingIn(budget, now) > 0)) return false;
    for (const { store, key, limit } of budgets) {
      let window = store.get(key);
      if (window === undefined) {
        window = new SlidingWindow(limit);
        store.set(key, window);
      }
      window.record(now);
    }
    return true;
  }

  /** The calls `sessionId` may still make to `toolName` right now: the tightest applicable limit. */
  remaining(sessionId, toolName) {
    checkCall(sessionId, toolName);
    const now = this.#now();
    this.#sweepIfDue(now);
    let least = Infinity;
    for (const budget of this.#budgetsFor(sessionId, toolName)) {
      least = Math.min(least, this.#remainingIn(budget, now));
    }
    return least;
  }

  /** Clears one session's per-session budget, or, without an argument, every budget. */
  reset(sessionId = undefined) {
    if (sessionId === undefined) {
      this.#globalStore.clear();
      this.#sessionStore.clear();
      this.#toolStore.clear();
      return;
    }
    if (typeof sessionId !== 'string') throw new TypeError('sessionId must be a string');
    this.#sessionStore.delete(sessionId);
  }

  /** How many budgets currently hold calls (for monitoring; expired ones are not counted after a sweep). */
  stats() {
    return { sessionBuckets: this.#sessionStore.size, toolBuckets: this.#toolStore.size, globalBuckets: this.#globalStore.size };
  }

  #budgetsFor(sessionId, toolName) {
    const budgets = [];
    if (this.#global !== undefined) budgets.push({ store: this.#globalStore, key: GLOBAL_KEY, limit: this.#global });
    if (this.#perSession !== undefined) budgets.push({ store: this.#sessionStore, key: sessionId, limit: this.#perSession });
    for (const rule of this.#toolRules) {
      if (rule.matches(toolName)) budgets.push({ store: this.#toolStore, key: rule.pattern, limit: rule.limit });
    }
    return budgets;
  }

  #remainingIn({ store, key, limit }, now) {
    const window = store.get(key);
    if (window === undefined) return limit.maxCalls;
    const left = window.remaining(now);
    if (window.isEmpty) store.delete(key);
    return left;
  }

  // Once per longest window every budget has been idle long enough to be empty unless it is
  // still in use, so sweeping at that rate frees abandoned sessions at amortised O(1) cost.
  #sweepIfDue(now) {
    if (this.#sweepEveryMs === 0 || now - this.#lastSweep < this.#sweepEveryMs) return;
    this.#lastSweep = now;
    for (const store of [this.#globalStore, this.#sessionStore, this.#toolStore]) {
      for (const [key, window] of store) {
        window.prune(now);
        if (window.isEmpty) store.delete(key);
      }
    }
  }
}

function checkCall(sessionId, toolName) {
  if (typeof sessionId !== 'string') throw new TypeError('sessionId must be a string');
  if (typeof toolName !== 'string') throw new TypeError('toolName must be a string');
}

module.exports = { RateLimiter, SlidingWindow, validateLimit, resolveClock };
