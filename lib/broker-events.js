// The seed API's broker events (S000, C38 in docs/compatibility.md), emitted by Broker and EnclaveBroker:
//   'session:created'   (session)            every session the broker creates, by any route
//   'session:completed' (session, result)    its run ended with success
//   'session:error'     (session, error)     it ended otherwise (`error` is the result's {code, message, name})
//   'tool:called'       (session, tool, args)    before the tool's handler runs
//   'tool:completed'    (session, tool, value)   after the handler succeeded
// `session` is the BrokerSession. A listener that throws is ignored, as `onEvent` listeners
// are: a bug in an observer must not fail the tool call or the run it observes. A session is
// observed when some 'session:*' listener exists as it is created; without one, sessions cost
// nothing extra (the server does not even report them).
'use strict';

const { EventEmitter } = require('node:events');
const host = require('./host');

const SESSION_EVENTS = ['session:created', 'session:completed', 'session:error'];

function emitQuietly(events, name, ...args) {
  for (const listener of events.rawListeners(name)) {
    try {
      listener.apply(events, args);
    } catch {
      // See above: observers cannot break what they observe.
    }
  }
}

class BrokerEvents {
  #emitter = new EventEmitter();
  #sessionOf = () => undefined;
  #listenersChanged = () => {};

  // EventEmitter's listener methods, which the broker offers as its own.
  on(event, listener) {
    this.#emitter.on(event, listener);
    this.#listenersChanged();
  }

  once(event, listener) {
    this.#emitter.once(event, listener);
    this.#listenersChanged();
  }

  off(event, listener) {
    this.#emitter.off(event, listener);
    this.#listenersChanged();
  }

  // Without an argument, every event's listeners (as EventEmitter; an explicit undefined is not "all").
  removeAllListeners(...event) {
    this.#emitter.removeAllListeners(...event);
    this.#listenersChanged();
  }

  listenerCount(event) {
    return this.#emitter.listenerCount(event);
  }

  // Called after every change of listeners (EnclaveBroker tells its server whether to report sessions).
  watchListeners(callback) {
    this.#listenersChanged = callback;
  }

  // How a tool call's sessionId becomes its BrokerSession (set once the broker exists).
  bindSessions(sessionOf) {
    this.#sessionOf = sessionOf;
  }

  // Whether sessions are being observed (see above).
  get observingSessions() {
    return SESSION_EVENTS.some((name) => this.#emitter.listenerCount(name) > 0);
  }

  sessionCreated(session) {
    if (!this.observingSessions) return;
    host.watchFinished(session._handle, (result) => {
      if (result.success) emitQuietly(this.#emitter, 'session:completed', session, result);
      else emitQuietly(this.#emitter, 'session:error', session, result.error);
    });
    emitQuietly(this.#emitter, 'session:created', session);
  }

  // The sessions' registry, with tool calls reported around it.
  observeTools(registry) {
    const emitter = this.#emitter;
    return {
      execute: async (name, args, ctx) => {
        if (emitter.listenerCount('tool:called') > 0) {
          emitQuietly(emitter, 'tool:called', this.#sessionOf(ctx.sessionId), name, args);
        }
        const result = await registry.execute(name, args, ctx);
        if (result && result.success && emitter.listenerCount('tool:completed') > 0) {
          emitQuietly(emitter, 'tool:completed', this.#sessionOf(ctx.sessionId), name, result.value);
        }
        return result;
      },
    };
  }
}

module.exports = { BrokerEvents };
