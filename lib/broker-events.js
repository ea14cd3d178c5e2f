// The seed API's broker events (S000, contract C38), emitted by EnclaveBroker:
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

  get emitter() {
    return this.#emitter;
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
