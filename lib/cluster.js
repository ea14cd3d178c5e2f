// A broker's membership of the state shared through Redis (the `redis` option, see
// redis-option.js). The core shares the broker's sessions from the moment it is created
// and connects in the background, retrying until Redis answers; `connected()` waits for
// that (rejecting with the latest attempt's error, which names Redis's address), and
// `leave()` waits for buffered events to reach Redis before giving up the lease. Node is
// kept alive only while someone waits.
'use strict';

const native = require('./native');
const host = require('./host');
const { unwrap } = require('./binding-error');

class SharedState {
  #cluster;
  #connected = false;
  #waiting = [];
  #left;

  constructor(nativeManager, connection) {
    this.#cluster = unwrap(native.BindingCluster.start(nativeManager, connection));
    host.registerCluster(
      this.#cluster.key,
      (error) => this.#attempted(error),
      () => {},
    );
  }

  #attempted(error) {
    if (error === undefined) this.#connected = true;
    for (const { resolve, reject } of this.#waiting.splice(0)) {
      host.release();
      if (error === undefined) resolve();
      else reject(new Error(error));
    }
  }

  /** The core's handle, for the listen() server. */
  get native() {
    return this.#cluster;
  }

  /** Resolves once the broker has reached Redis; rejects with the next failed attempt's error. */
  connected() {
    if (this.#connected) return Promise.resolve();
    if (this.#left !== undefined) return Promise.reject(new Error('The broker has left the shared state'));
    host.hold();
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /** Asks the shared state: `find` (a session JSON or null), `list`, `command`; parsed JSON. */
  async #request(op, argument) {
    host.hold();
    try {
      return JSON.parse(await host.awaitClusterAnswer(this.#cluster.request(op, argument)));
    } finally {
      host.release();
    }
  }

  /** The session `id` wherever it runs: `{sessionId, state, createdAt, expiresAt, toolCallCount, owner, local}`, or null. */
  find(id) {
    return this.#request('find', String(id));
  }

  /** The sessions of the principal with `ownerKey` (every session without one), in creation order. */
  list(ownerKey) {
    return this.#request('list', ownerKey ?? '');
  }

  /** Runs `{op: 'cancel' | 'delete' | 'toolResult', ...}` on session `id` where it runs: `{status, message}`. */
  command(id, command) {
    return this.#request('command', JSON.stringify({ ...command, sessionId: id }));
  }

  /**
   * Follows the shared log of session `id` after `afterSeq`: `onEvents(events)` for each
   * page, then `onEnd()` at its final (or when the session is gone). Returns a stop function.
   */
  follow(id, afterSeq, onEvents, onEnd) {
    const key = this.#cluster.follow(String(id), afterSeq);
    host.followCluster(key, (lines, done) => {
      if (lines !== '') onEvents(lines.split('\n').map((line) => JSON.parse(line)));
      if (done) onEnd();
    });
    return () => {
      host.forgetClusterFollow(key);
      this.#cluster.unfollow(key);
    };
  }

  /** Waits up to `timeoutMs` for buffered events to reach Redis, then leaves (once). */
  leave(timeoutMs) {
    this.#left ??= new Promise((resolve) => {
      host.hold();
      host.registerCluster(
        this.#cluster.key,
        () => {},
        () => {
          host.release();
          resolve();
        },
      );
      this.#attempted('The broker left the shared state before reaching Redis');
      this.#cluster.close(timeoutMs);
    });
    return this.#left;
  }
}

module.exports = { SharedState };
