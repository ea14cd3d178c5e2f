// OpenApiSpecPoller: watches an OpenAPI spec URL and reports when its content changes
// (the original's b/openapi/openapi-spec-poller.ts, 1.U in docs/compatibility.md).
//
// Events: 'changed' (body, hash), 'unchanged', 'pollError' (error), 'unhealthy'
// (consecutiveFailures), 'recovered'. Every timer is unref()'d: a poller alone never keeps
// Node running (the original's did; our timer decision, docs/compatibility.md).
'use strict';

const { EventEmitter } = require('node:events');
const { sha256Hex } = require('./sha256');

const CHANGE_DETECTION_MODES = ['auto', 'etag', 'content-hash'];

const DEFAULT_RETRY = Object.freeze({
  maxRetries: 3,
  initialDelayMs: 1000,
  maxDelayMs: 10000,
  backoffMultiplier: 2,
});

function isRecord(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function toError(value) {
  return value instanceof Error ? value : new Error(String(value));
}

// A number option: its default when absent, else it must satisfy `accept`.
function numberOption(value, fallback, name, accept, requirement) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !accept(value)) {
    throw new TypeError(`${name} must be ${requirement}`);
  }
  return value;
}

const positive = (n) => n > 0;
const nonNegative = (n) => n >= 0;
const nonNegativeInteger = (n) => n >= 0 && Number.isInteger(n);

function resolveConfig(config) {
  if (!isRecord(config)) throw new TypeError('OpenApiSpecPoller config must be an object');
  if (typeof config.url !== 'string' || config.url === '') {
    throw new TypeError('OpenApiSpecPoller config.url must be a non-empty string');
  }
  const changeDetection = config.changeDetection ?? 'auto';
  if (!CHANGE_DETECTION_MODES.includes(changeDetection)) {
    throw new TypeError(`changeDetection must be one of ${CHANGE_DETECTION_MODES.map((m) => `'${m}'`).join(', ')}`);
  }
  if (config.retry !== undefined && !isRecord(config.retry)) throw new TypeError('retry must be an object');
  if (config.headers !== undefined && !isRecord(config.headers)) throw new TypeError('headers must be an object');
  const retry = { ...DEFAULT_RETRY, ...config.retry };
  return {
    url: config.url,
    intervalMs: numberOption(config.intervalMs, 60000, 'intervalMs', positive, 'a positive number'),
    fetchTimeoutMs: numberOption(config.fetchTimeoutMs, 10000, 'fetchTimeoutMs', positive, 'a positive number'),
    changeDetection,
    unhealthyThreshold: numberOption(config.unhealthyThreshold, 3, 'unhealthyThreshold', nonNegative, 'a number >= 0'),
    retry: {
      maxRetries: numberOption(retry.maxRetries, 3, 'retry.maxRetries', nonNegativeInteger, 'an integer >= 0'),
      initialDelayMs: numberOption(retry.initialDelayMs, 1000, 'retry.initialDelayMs', nonNegative, 'a number >= 0'),
      maxDelayMs: numberOption(retry.maxDelayMs, 10000, 'retry.maxDelayMs', nonNegative, 'a number >= 0'),
      backoffMultiplier: numberOption(retry.backoffMultiplier, 2, 'retry.backoffMultiplier', nonNegative, 'a number >= 0'),
    },
    headers: { ...config.headers },
  };
}

// Resolves after `ms`, or at once when `signal` aborts.
function abortableDelay(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}

class OpenApiSpecPoller extends EventEmitter {
  #config;
  #interval = null;
  // One controller per start()…stop() run: stop() aborts it, which ends the run's fetches,
  // retry waits and pending emits.
  #run = new AbortController();
  #activePoll = null;
  #lastHash = null;
  #lastEtag = null;
  #lastModified = null;
  #consecutiveFailures = 0;
  #unhealthy = false;

  constructor(config) {
    super();
    this.#config = resolveConfig(config);
  }

  start() {
    if (this.#interval !== null) return;
    this.#run = new AbortController();
    const signal = this.#run.signal;
    // A poll of the previous run may still be settling after stop(); the first poll of
    // this run waits for it rather than being dropped.
    const previous = this.#activePoll;
    if (previous !== null) {
      const next = () => {
        if (!signal.aborted) this.#pollInBackground(signal);
      };
      previous.then(next, next);
    } else {
      this.#pollInBackground(signal);
    }
    this.#interval = setInterval(() => this.#pollInBackground(signal), this.#config.intervalMs);
    this.#interval.unref();
  }

  stop() {
    this.#run.abort();
    if (this.#interval !== null) {
      clearInterval(this.#interval);
      this.#interval = null;
    }
  }

  getHash() {
    return this.#lastHash;
  }

  getConsecutiveFailures() {
    return this.#consecutiveFailures;
  }

  // One poll cycle (with its retries). While a cycle is in flight, returns that one. After
  // stop() it does nothing until start() again.
  poll() {
    return this.#pollWith(this.#run.signal);
  }

  dispose() {
    this.stop();
    this.removeAllListeners();
  }

  // Timer-driven polls have no caller to reject to: whatever a listener throws ends here
  // rather than as an unhandled rejection that would take the host process down.
  #pollInBackground(signal) {
    this.#pollWith(signal).catch(() => {});
  }

  #pollWith(signal) {
    if (this.#activePoll !== null) return this.#activePoll;
    const cycle = this.#cycle(signal).finally(() => {
      this.#activePoll = null;
    });
    this.#activePoll = cycle;
    return cycle;
  }

  async #cycle(signal) {
    const { maxRetries, initialDelayMs, maxDelayMs, backoffMultiplier } = this.#config.retry;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (signal.aborted) return;
      try {
        await this.#attempt(signal);
      } catch (error) {
        if (signal.aborted) return;
        if (attempt < maxRetries) {
          await abortableDelay(Math.min(initialDelayMs * backoffMultiplier ** attempt, maxDelayMs), signal);
          continue;
        }
        this.#consecutiveFailures++;
        this.emit('pollError', toError(error));
        if (this.#consecutiveFailures >= this.#config.unhealthyThreshold && !this.#unhealthy) {
          this.#unhealthy = true;
          this.emit('unhealthy', this.#consecutiveFailures);
        }
        return;
      }
      if (signal.aborted) return;
      this.#consecutiveFailures = 0;
      if (this.#unhealthy) {
        this.#unhealthy = false;
        this.emit('recovered');
      }
      return;
    }
  }

  // One request. Throws on a network error, a timeout or a non-OK status, and also when a
  // 'changed' listener throws: the change then counts as not taken in, so the hash is not
  // recorded and the next attempt reports it again.
  async #attempt(runSignal) {
    const headers = { ...this.#config.headers };
    if (this.#config.changeDetection !== 'content-hash') {
      if (this.#lastEtag !== null) headers['If-None-Match'] = this.#lastEtag;
      if (this.#lastModified !== null) headers['If-Modified-Since'] = this.#lastModified;
    }

    const request = new AbortController();
    const timeoutMs = this.#config.fetchTimeoutMs;
    const timer = setTimeout(() => {
      request.abort(new Error(`Timed out after ${timeoutMs}ms fetching OpenAPI spec from ${this.#config.url}`));
    }, timeoutMs);
    timer.unref();
    const onRunAbort = () => request.abort(new Error('Poller stopped'));
    runSignal.addEventListener('abort', onRunAbort, { once: true });

    try {
      const response = await fetch(this.#config.url, { headers, signal: request.signal });
      if (runSignal.aborted) return;
      if (response.status === 304) {
        await response.body?.cancel();
        this.emit('unchanged');
        return;
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`HTTP ${response.status}: ${response.statusText}`);
      }
      const etag = response.headers.get('etag');
      const lastModified = response.headers.get('last-modified');
      const body = await response.text();
      if (runSignal.aborted) return;
      const hash = sha256Hex(body);
      if (hash !== this.#lastHash) {
        this.emit('changed', body, hash);
        this.#lastHash = hash;
      } else {
        this.emit('unchanged');
      }
      // Validators are kept only once the body has been taken in, so a failed attempt
      // never turns the next request into a 304 for content nobody saw.
      if (etag !== null) this.#lastEtag = etag;
      if (lastModified !== null) this.#lastModified = lastModified;
    } finally {
      clearTimeout(timer);
      runSignal.removeEventListener('abort', onRunAbort);
    }
  }
}

module.exports = { OpenApiSpecPoller };
