// The seed's embedder-driven tool loop (S001 in docs/compatibility.md's Quick Start), for one BrokerSession:
//
//   session.on('tool_call', async (call) => {
//     const result = await broker.executeToolCall(session.id, call);
//     session.send({ type: 'tool_result', id: call.id, data: result });
//   });
//
// A call the script makes while its session has a 'tool_call' listener goes to the listeners
// as `{id, name, args}` and waits for `send()`; without a listener the broker runs the tool
// itself, as the original does (tool-runner.js). A listener that throws, or returns a
// promise that rejects, before the call is answered fails it as a throwing handler would
// (its `code`, else EXECUTION_ERROR), so an unhandled `executeToolCall` failure reaches the
// script instead of ending Node. A call nobody answers ends at `perToolDeadlineMs`, as a
// hanging handler does, and its signal aborts.
'use strict';

const { openToolCall, answerToolCall, failToolCall, parseToolArgs, describeRejection } = require('./tool-runner');
const { show } = require('./config');

const EVENT = 'tool_call';

function checkListener(event, listener) {
  if (event !== EVENT) {
    throw new TypeError(`BrokerSession emits only '${EVENT}' (stream events go to onEvent()), got ${show(event)}`);
  }
  if (typeof listener !== 'function') throw new TypeError(`The '${EVENT}' listener must be a function`);
}

function errorCode(error, fallback) {
  try {
    return error !== null && typeof error === 'object' && error.code != null ? String(error.code) : fallback;
  } catch {
    return fallback;
  }
}

class ToolCallListeners {
  #listeners = [];
  // Call id → {callKey, signal} of each call delivered and not yet answered.
  #waiting = new Map();

  add(event, listener, once) {
    checkListener(event, listener);
    this.#listeners.push({ listener, once });
  }

  // As EventEmitter: the most recently added instance of `listener`.
  remove(event, listener) {
    checkListener(event, listener);
    const index = this.#listeners.findLastIndex((entry) => entry.listener === listener);
    if (index !== -1) this.#listeners.splice(index, 1);
  }

  get active() {
    return this.#listeners.length > 0;
  }

  listenerCount(event) {
    return event === EVENT ? this.#listeners.length : 0;
  }

  // The AbortSignal of a delivered call still waiting for its answer.
  signalOf(callId) {
    return this.#waiting.get(callId)?.signal;
  }

  // `call` is the core's BindingToolCall.
  deliver(call) {
    const { callKey, callId: id, name } = call;
    const signal = openToolCall(call);
    this.#waiting.set(id, { callKey, signal });
    // The core abandoned the call (its deadline, a cancel, the end of the run).
    signal.addEventListener('abort', () => this.#waiting.delete(id), { once: true });
    const delivered = { id, name, args: parseToolArgs(call.argsJson) };
    // As EventEmitter: the listeners present now all get this call, even one removed meanwhile.
    for (const entry of this.#listeners.slice()) {
      const index = this.#listeners.indexOf(entry);
      if (entry.once && index !== -1) this.#listeners.splice(index, 1);
      let returned;
      try {
        returned = entry.listener(delivered);
      } catch (error) {
        this.#fail(id, error);
        continue;
      }
      if (returned !== null && typeof returned === 'object' && typeof returned.then === 'function') {
        returned.then(undefined, (error) => this.#fail(id, error));
      }
    }
  }

  #take(id) {
    const waiting = this.#waiting.get(id);
    if (waiting !== undefined) this.#waiting.delete(id);
    return waiting;
  }

  #fail(id, error) {
    const waiting = this.#take(id);
    if (waiting !== undefined) failToolCall(waiting.callKey, errorCode(error, 'EXECUTION_ERROR'), describeRejection(error));
  }

  // `{type: 'tool_result', id, data}` answers call `id` with `data`; `{..., error}` fails it
  // (`error` is `{message, code?}`, an Error or a string; the code defaults to TOOL_ERROR,
  // as for submitToolResult).
  send(message, maxDepth) {
    if (message === null || typeof message !== 'object' || message.type !== 'tool_result') {
      throw new TypeError("send() takes {type: 'tool_result', id, data} or {type: 'tool_result', id, error}");
    }
    if (typeof message.id !== 'string') throw new TypeError('send(): id must be the id of the tool_call (a string)');
    const waiting = this.#take(message.id);
    if (waiting === undefined) throw new Error(`No pending tool call ${message.id}`);
    const { error } = message;
    if (error !== undefined && error !== null) {
      const text = typeof error === 'string' ? error : describeRejection(error);
      failToolCall(waiting.callKey, errorCode(error, 'TOOL_ERROR'), text);
    } else {
      answerToolCall(waiting.callKey, message.data, maxDepth);
    }
  }
}

module.exports = { ToolCallListeners };
