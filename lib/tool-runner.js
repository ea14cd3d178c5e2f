// Runs one tool call for the engine: the registry validates and runs the handler (with
// the call's AbortSignal), the result is copied through the value codec, and the answer
// goes back to the core. Each session manager and standalone session gives the core its own
// tool function (toolFunction below), which receives its calls as BindingToolCall objects
// `{callKey, sessionKey, sessionId, callId, name, argsJson, aborted}`. Aborts of calls the
// facade has come through host.js, ordered with the run's completion; a call abandoned on
// its way arrives with `aborted`.
'use strict';

const native = require('./native');
const { createToolResultEncoder } = require('./tool-result-json');

const encoder = createToolResultEncoder();

// Call key → AbortController of a tool call whose handler is running.
const toolSignals = new Map();

function describeRejection(error) {
  try {
    const message = error !== null && typeof error === 'object' ? error.message : undefined;
    return String(message !== undefined && message !== null && message !== '' ? message : error);
  } catch {
    return 'Tool execution failed';
  }
}

// The three steps of answering a tool call, shared by the automatic loop (runToolCall) and
// the embedder's (BrokerSession's `tool_call` listeners and `send()`): open it (its handler's
// AbortSignal, aborted if the core abandons the call), then answer with a value, copied
// through the value codec (tool-result-json.js), or with an error.
function openToolCall(call) {
  const controller = new AbortController();
  toolSignals.set(call.callKey, controller);
  // Abandoned on its way here: the signal aborts once the handler has started, as it would
  // have had the abort come after the call, so a handler waiting for 'abort' gets it.
  if (call.aborted) setImmediate(() => abortToolCall(call.callKey));
  return controller.signal;
}

function answerToolCall(callKey, value, maxDepth) {
  // A string crosses as itself (the core makes its JSON, or keeps it in the sidecar); one
  // with lone surrogates takes JSON's escapes, which keep them.
  if (typeof value === 'string' && value.isWellFormed?.() === true) {
    toolSignals.delete(callKey);
    native.answerToolCallText(callKey, value);
    return;
  }
  let json;
  try {
    json = encoder.toJson(value, maxDepth);
  } catch (error) {
    failToolCall(callKey, 'TOOL_ERROR', error.message);
    return;
  }
  toolSignals.delete(callKey);
  native.answerToolCall(callKey, json);
}

function failToolCall(callKey, code, message) {
  toolSignals.delete(callKey);
  native.failToolCall(callKey, { code, message });
}

// The JSON arguments of a call, as the core sent them.
function parseToolArgs(argsJson) {
  try {
    return JSON.parse(argsJson);
  } catch {
    return undefined;
  }
}

// Runs `call` (a BindingToolCall) through `registry`'s tools.
function runToolCall(call, registry, maxDepth) {
  const { callKey, sessionId, callId, name } = call;
  const signal = openToolCall(call);
  let pending;
  try {
    pending = Promise.resolve(registry.execute(name, parseToolArgs(call.argsJson), { sessionId, callId, signal }));
  } catch (error) {
    pending = Promise.reject(error);
  }
  pending.then(
    (result) => {
      if (!result || !result.success) {
        const error = (result && result.error) || {};
        failToolCall(callKey, String(error.code ?? 'EXECUTION_ERROR'), String(error.message ?? 'Tool failed'));
        return;
      }
      answerToolCall(callKey, result.value, maxDepth);
    },
    // Only a custom registry's execute() can reject; its error is read defensively.
    (error) => failToolCall(callKey, 'EXECUTION_ERROR', describeRejection(error)),
  );
}

function abortToolCall(callKey) {
  const controller = toolSignals.get(callKey);
  if (controller !== undefined) {
    toolSignals.delete(callKey);
    controller.abort();
  }
}

// The function the core calls with each tool call of one manager or session: `run(call)`.
function toolFunction(run) {
  return (call) => {
    try {
      run(call);
    } catch (error) {
      // A bug in the facade must not take down the host process from a native callback.
      process.emitWarning(`enclave-broker-rs: internal tool dispatch error: ${error && error.stack ? error.stack : error}`);
    }
  };
}

module.exports = {
  toolFunction,
  runToolCall,
  abortToolCall,
  openToolCall,
  answerToolCall,
  failToolCall,
  parseToolArgs,
  describeRejection,
  toolSignals,
};
