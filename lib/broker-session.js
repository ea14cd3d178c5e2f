// BrokerSession: the original's session API (b/broker-session.ts) over a native session.
//
// Listener semantics follow the original: handlers run for every event, in seq order,
// exactly once, and events emitted during a call on this object (execute, cancel, emit*)
// reach them before that call returns. Events from engine threads are announced by the core
// and pulled from the history by seq, at most EVENT_BATCH per turn of the event loop, so
// neither path can reorder or repeat events and no session can stall Node.
'use strict';

const native = require('./native');
const host = require('./host');
const { parseEventLines } = require('./events');
const { resolveSessionConfig } = require('./config');
const { unwrap, toException } = require('./binding-error');
const { runToolCall, toolFunction, failToolCall } = require('./tool-runner');
const { ToolCallListeners } = require('./tool-call-listeners');

// Module-private token: only the facade can wrap an existing native session.
const FROM_HANDLE = Symbol('fromHandle');
// Events delivered to listeners per turn of the event loop when the core announces new ones:
// a session that floods its listeners cannot hold up Node for longer than one batch.
const EVENT_BATCH = 256;
const PHASES = ['connecting', 'sending', 'receiving', 'processing'];

function optionalNumber(value) {
  return value === undefined || value === null ? undefined : Number(value);
}


function optionalJson(value) {
  return value === undefined ? undefined : JSON.stringify(value);
}

class BrokerSession {
  #handle;
  #registry;
  #maxDepth;
  #listeners = [];
  #delivered = 0;
  #dispatching = false;
  #again = false;
  #drainScheduled = false;
  // The run's final result, kept until every event before it reached the listeners.
  #finishing;
  #promise;
  #resolve;
  #emitter;
  #toolCalls = new ToolCallListeners();

  constructor(registry, config = {}, internal = undefined) {
    if (internal !== undefined && internal.token === FROM_HANDLE) {
      this.#init(internal.handle, registry, internal.maxDepth);
      return;
    }
    // The docs' object form: createBrokerSession({toolRegistry, sessionId, limits, enclave}).
    if (registry !== null && typeof registry === 'object' && 'toolRegistry' in registry && arguments.length === 1) {
      const { toolRegistry, enclave, enclaveConfig, ...rest } = registry;
      registry = toolRegistry;
      config = { ...rest, enclaveConfig: enclaveConfig ?? enclave };
    }
    if (registry === null || typeof registry !== 'object' || typeof registry.execute !== 'function') {
      throw new TypeError('BrokerSession needs a ToolRegistry');
    }
    const resolved = resolveSessionConfig(config);
    // The tool function reaches the session through a WeakRef: the native session holds the
    // function, and must not keep its own wrapper alive.
    const self = new WeakRef(this);
    const tools = toolFunction((call) => {
      const session = self.deref();
      if (session !== undefined) session._runToolCall(call);
      else failToolCall(call.callKey, 'EXECUTION_ERROR', 'The session is gone');
    });
    this.#init(unwrap(native.BindingSession.create(resolved.binding, tools)), registry, resolved.maxDepth);
  }

  // Wraps a session created by a native manager.
  static _fromHandle(handle, registry, maxDepth) {
    return new BrokerSession(registry, undefined, { token: FROM_HANDLE, handle, maxDepth });
  }

  #init(handle, registry, maxDepth) {
    this.#handle = handle;
    this.#registry = registry;
    this.#maxDepth = maxDepth;
    this.#listeners = [];
    this.#delivered = 0;
    Object.defineProperty(this, 'sessionId', { value: handle.sessionId, enumerable: true });
    Object.defineProperty(this, 'createdAt', { value: handle.createdAt, enumerable: true });
    Object.defineProperty(this, 'expiresAt', { value: handle.expiresAt, enumerable: true });
  }

  get state() {
    return this.#handle.state;
  }

  // The seed documents' name for `sessionId` (a getter, so JSON and keys stay the original's).
  get id() {
    return this.sessionId;
  }

  get seq() {
    return this.#handle.seq;
  }

  // The limits the session runs with (`memoryLimit` is the script's heap limit in bytes).
  // For sessions a listen() server created, these are the operator's after the client's
  // request tightened them.
  get limits() {
    return Object.freeze(JSON.parse(this.#handle.limitsJson()));
  }

  get _key() {
    return this.#handle.key;
  }

  get _handle() {
    return this.#handle;
  }

  // The core SessionEmitter surface of the original (`session.events`).
  get events() {
    if (this.#emitter === undefined) {
      const session = this;
      this.#emitter = Object.freeze({
        emitStdout: (chunk) => session.#emit(() => session.#handle.emitStdout(String(chunk))),
        emitLog: (level, message, data) =>
          session.#emit(() => session.#handle.emitLog(String(level), String(message), optionalJson(data))),
        emitToolProgress: (...args) => session.emitToolProgress(...args),
        emitPartialResult: (...args) => session.emitPartialResult(...args),
        onEvent: (handler) => session.onEvent(handler),
        getEvents: () => session.getEvents(),
        get seq() {
          return session.seq;
        },
      });
    }
    return this.#emitter;
  }

  onEvent(handler) {
    if (typeof handler !== 'function') throw new TypeError('onEvent handler must be a function');
    if (this.#listeners.length === 0) {
      this.#delivered = this.#handle.setForwarding(true);
      this.#follow(true);
    }
    const entry = { handler };
    this.#listeners.push(entry);
    return () => {
      const index = this.#listeners.indexOf(entry);
      if (index === -1) return;
      this.#listeners.splice(index, 1);
      if (this.#listeners.length === 0) {
        this.#handle.setForwarding(false);
        this.#follow(false);
      }
    };
  }

  // Forwarded events reach the sessions registered with the host. execute() registers its
  // session until the run is done; a session that runs without it (the listen() server's)
  // is registered here while it has listeners and has not ended.
  #follow(listening) {
    if (this.#promise !== undefined) return;
    if (listening && !this.#handle.isTerminal()) host.register(this.#handle.key, this);
    else host.unregister(this.#handle.key);
  }

  getEvents() {
    return parseEventLines(this.#handle.eventsAfter(0));
  }

  #dispatch(event) {
    this.#delivered = event.seq;
    if (event.type === 'final') this.#follow(false);
    // A snapshot: a listener may unsubscribe while the event is being delivered.
    for (const { handler } of this.#listeners.slice()) {
      try {
        handler(event);
      } catch {
        // The original swallows listener exceptions; one bad listener must not stop the stream.
      }
    }
  }

  // Delivers `events` (parsed, in seq order) and then anything emitted meanwhile. Not
  // re-entrant: a listener that emits (emitPartialResult, cancel, ...) only flags that more
  // events exist, and the running loop delivers them after the current event has reached
  // every listener, so all listeners see one order.
  #pump(events) {
    this.#dispatching = true;
    try {
      for (;;) {
        this.#again = false;
        let gap = false;
        for (const event of events) {
          if (this.#listeners.length === 0) return;
          if (event.seq <= this.#delivered) continue;
          if (event.seq !== this.#delivered + 1) {
            gap = true;
            break;
          }
          this.#dispatch(event);
        }
        if ((!gap && !this.#again) || this.#listeners.length === 0) return;
        events = parseEventLines(this.#handle.eventsAfter(this.#delivered));
      }
    } finally {
      this.#dispatching = false;
    }
  }

  // Delivers the events after the last delivered one up to seq `through` (all by default),
  // pulled synchronously: events a call on this object emitted reach the listeners before it
  // returns. Then the core's announcements are re-armed, or the rest comes in batches.
  _catchUp(through = Infinity) {
    if (this.#listeners.length === 0) return;
    if (this.#dispatching) {
      this.#again = true;
      return;
    }
    const max = through === Infinity ? undefined : Math.max(0, through - this.#delivered);
    this.#pump(parseEventLines(this.#handle.eventsAfter(this.#delivered, max)));
    if (this.#listeners.length > 0 && !this.#drainScheduled && this.#handle.rearmForwarding(this.#delivered)) {
      this.#drainScheduled = true;
      setImmediate(() => this.#drainBatch());
    }
  }

  // The core announces events the listeners have not had: they are pulled from the history,
  // EVENT_BATCH per turn of the event loop (setImmediate between batches), until caught up.
  _receiveEvents() {
    if (!this.#drainScheduled) this.#drainBatch();
  }

  #drainBatch() {
    this.#drainScheduled = false;
    if (this.#listeners.length > 0 && !this.#dispatching) {
      const batch = parseEventLines(this.#handle.eventsAfter(this.#delivered, EVENT_BATCH));
      this.#pump(batch);
      // One batch per turn while events keep coming; once a pull finds none, the next event
      // announces itself again.
      if (this.#listeners.length > 0 && (batch.length > 0 || this.#handle.rearmForwarding(this.#delivered))) {
        this.#drainScheduled = true;
        setImmediate(() => this.#drainBatch());
        return;
      }
    }
    if (this.#finishing !== undefined) this.#finish();
  }

  // The run is over: its result is handed out once the listeners have every event.
  _receiveDone(resultJson) {
    this.#finishing = resultJson;
    if (!this.#drainScheduled) this.#drainBatch();
  }

  #finish() {
    const resultJson = this.#finishing;
    this.#finishing = undefined;
    host.unregister(this.#handle.key);
    host.release();
    const resolve = this.#resolve;
    this.#resolve = undefined;
    if (resolve !== undefined) resolve(JSON.parse(resultJson));
  }

  // A tool call of this session's script (a BindingToolCall): to the 'tool_call'
  // listeners if there are any, else through the registry.
  _runToolCall(call) {
    if (this.#toolCalls.active) this.#toolCalls.deliver(call);
    else runToolCall(call, this.#registry, this.#maxDepth);
  }

  // Seed API (S001 in docs/compatibility.md): the embedder-driven tool loop; see tool-call-listeners.js.
  on(event, listener) {
    this.#toolCalls.add(event, listener, false);
    return this;
  }

  once(event, listener) {
    this.#toolCalls.add(event, listener, true);
    return this;
  }

  off(event, listener) {
    this.#toolCalls.remove(event, listener);
    return this;
  }

  send(message) {
    this.#toolCalls.send(message, this.#maxDepth);
  }

  // The AbortSignal of a call delivered to 'tool_call' listeners (for executeToolCall).
  _toolCallSignal(callId) {
    return this.#toolCalls.signalOf(callId);
  }

  // A client's result (or `{message, code?}` error) for an external tool call.
  _submitToolResult(callId, result, error) {
    if (typeof callId !== 'string') throw new TypeError('callId must be a string');
    const refused =
      error !== undefined && error !== null
        ? this.#handle.submitToolResult(callId, false, undefined, String(error.code ?? 'TOOL_ERROR'), String(error.message))
        : this.#handle.submitToolResult(callId, true, optionalJson(result));
    if (refused != null) throw toException(refused);
    this._catchUp();
  }

  #emit(fn) {
    fn();
    this._catchUp();
  }

  execute(code) {
    if (this.#promise !== undefined) return Promise.reject(new Error('Session is already executing'));
    if (typeof code !== 'string') {
      return Promise.reject(new TypeError(`Script code must be a string, got ${code === null ? 'null' : typeof code}`));
    }
    let resolve;
    const promise = new Promise((r) => {
      resolve = r;
    });
    host.register(this.#handle.key, this);
    // The seq of the last event the start emitted, or why the session cannot run.
    const started = this.#handle.execute(code);
    if (typeof started !== 'number') {
      host.unregister(this.#handle.key);
      return Promise.reject(toException(started));
    }
    this.#promise = promise;
    this.#resolve = resolve;
    host.hold();
    // Only what the start emitted is delivered now; the run's own events, which may already
    // be many, come in batches.
    this._catchUp(started);
    return promise;
  }

  async wait() {
    if (this.#promise === undefined) {
      // Cancelled before execute by its manager (terminate, dispose): the original's
      // cancel() left an execution promise behind, so wait() gives that final result.
      const result = this.#handle.finalResultJson();
      if (result === null) throw new Error('Session has not started execution');
      this.#promise = Promise.resolve(JSON.parse(result));
    }
    return this.#promise;
  }

  async cancel(reason) {
    const result = this.#handle.cancel(reason === undefined || reason === null ? undefined : String(reason));
    if (result !== null && this.#promise === undefined) this.#promise = Promise.resolve(JSON.parse(result));
    this._catchUp();
  }

  emitToolProgress(callId, phase, elapsedMs, bytesReceived, totalBytes) {
    if (!PHASES.includes(phase)) {
      throw new TypeError(`Tool progress phase must be one of ${PHASES.join(', ')}, got ${String(phase)}`);
    }
    this.#emit(() =>
      this.#handle.emitToolProgress(String(callId), phase, Number(elapsedMs), optionalNumber(bytesReceived), optionalNumber(totalBytes)),
    );
  }

  emitPartialResult(path, data, error, hasNext = true) {
    if (!Array.isArray(path)) throw new TypeError('Partial result path must be an array of strings');
    this.#emit(() =>
      this.#handle.emitPartialResult(
        JSON.stringify(path.map(String)),
        optionalJson(data),
        optionalJson(error),
        Boolean(hasNext),
      ),
    );
  }

  getPartialErrors() {
    return JSON.parse(this.#handle.partialErrorsJson());
  }

  isExpired() {
    return this.#handle.isExpired();
  }

  isTerminal() {
    return this.#handle.isTerminal();
  }

  getStats() {
    return JSON.parse(this.#handle.statsJson());
  }

  dispose() {
    this.#handle.dispose();
    this._catchUp();
  }
}

function createBrokerSession(registry, config) {
  return arguments.length === 1 ? new BrokerSession(registry) : new BrokerSession(registry, config);
}

module.exports = { BrokerSession, createBrokerSession };
