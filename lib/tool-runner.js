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

// The three steps of answering a tool call, shared by the automatic loop (runToolCall) and
// the embedder's (BrokerSession's `tool_call` listeners and `send()`): open it (its handler's
// AbortSignal, aborted if the core abandons the call), then answer with a value, copied
// through the value codec, or with an error.
function openToolCall(callKey) {
  const controller = new AbortController();
  toolSignals.set(callKey, controller);
  return controller.signal;
}

function reply(callKey, ok, json, code, message) {
  toolSignals.delete(callKey);
  native.resolveToolCall(callKey, ok, json, code, message, 'Error');
}

function answerToolCall(callKey, value, maxDepth) {
  let json;
  try {
    json = codec.toJson(value, maxDepth, 'tool');
  } catch (error) {
    reply(callKey, false, undefined, 'TOOL_ERROR', error.message);
    return;
  }
  reply(callKey, true, json);
}

function failToolCall(callKey, code, message) {
  reply(callKey, false, undefined, code, message);
}

// The JSON arguments of a call, as the core sent them.
function parseToolArgs(argsJson) {
  try {
    return JSON.parse(argsJson);
  } catch {
    return undefined;
  }
}

// `meta` is the core's `[sessionId, callId, toolName, ownerKey]`.
function runToolCall(callKey, meta, argsJson, registry, maxDepth) {
  const [sessionId, callId, name] = meta;
  const signal = openToolCall(callKey);
  let pending;
  try {
    pending = Promise.resolve(registry.execute(name, parseToolArgs(argsJson), { sessionId, callId, signal }));
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

module.exports = {
  runToolCall,
  abortToolCall,
  openToolCall,
  answerToolCall,
  failToolCall,
  parseToolArgs,
  describeRejection,
  toolSignals,
};
