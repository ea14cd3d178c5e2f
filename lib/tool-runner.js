// Runs one tool call for the engine: the registry validates and runs the handler (with
// the call's AbortSignal), the result is copied through the value codec, and the answer
// goes back to the core. Used for sessions with a JS wrapper and for sessions created by
// the listen() server, which only the owning broker's registry knows how to serve.
'use strict';

const native = require('./native');
const { createValueCodec } = require('./value-codec');

const codec = createValueCodec();

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

// `meta` is the core's `[sessionId, callId, toolName, ownerKey]`.
function runToolCall(callKey, meta, argsJson, registry, maxDepth) {
  const [sessionId, callId, name] = meta;
  const controller = new AbortController();
  toolSignals.set(callKey, controller);
  const reply = (ok, json, code, message) => {
    toolSignals.delete(callKey);
    native.resolveToolCall(callKey, ok, json, code, message, 'Error');
  };
  let args;
  try {
    args = JSON.parse(argsJson);
  } catch {
    args = undefined;
  }
  let pending;
  try {
    pending = Promise.resolve(registry.execute(name, args, { sessionId, callId, signal: controller.signal }));
  } catch (error) {
    pending = Promise.reject(error);
  }
  pending.then(
    (result) => {
      if (!result || !result.success) {
        const error = (result && result.error) || {};
        reply(false, undefined, String(error.code ?? 'EXECUTION_ERROR'), String(error.message ?? 'Tool failed'));
        return;
      }
      let json;
      try {
        json = codec.toJson(result.value, maxDepth, 'tool');
      } catch (error) {
        reply(false, undefined, 'TOOL_ERROR', error.message);
        return;
      }
      reply(true, json);
    },
    // Only a custom registry's execute() can reject; its error is read defensively.
    (error) => reply(false, undefined, 'EXECUTION_ERROR', describeRejection(error)),
  );
}

function abortToolCall(callKey) {
  const controller = toolSignals.get(callKey);
  if (controller !== undefined) {
    toolSignals.delete(callKey);
    controller.abort();
  }
}

module.exports = { runToolCall, abortToolCall, toolSignals };
