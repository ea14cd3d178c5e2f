// The facade's end of the channel from the Rust core. Messages arrive in the order the
// core produced them: event batches, tool calls to run, aborts of tool signals, and the
// completion of executions. While any execution is in flight the channel keeps Node's
// event loop alive; otherwise it does not.
'use strict';

const native = require('./native');

const KIND_EVENTS = 0;
const KIND_TOOL_CALL = 1;
const KIND_TOOL_ABORT = 2;
const KIND_DONE = 3;

// Session key → the BrokerSession that receives its messages.
const sessions = new Map();
// Call key → AbortController of a tool call whose handler is running.
const toolSignals = new Map();
let runsInFlight = 0;

function dispatch(kind, a, b, s1, s2) {
  switch (kind) {
    case KIND_EVENTS: {
      const session = sessions.get(a);
      if (session !== undefined) session._receiveEvents(s1);
      break;
    }
    case KIND_TOOL_CALL: {
      const session = sessions.get(b);
      if (session === undefined) {
        native.resolveToolCall(a, false, undefined, 'EXECUTION_ERROR', 'No JavaScript session handles this call', 'Error');
      } else {
        session._runToolCall(a, s1, s2);
      }
      break;
    }
    case KIND_TOOL_ABORT: {
      const controller = toolSignals.get(a);
      if (controller !== undefined) {
        toolSignals.delete(a);
        controller.abort();
      }
      break;
    }
    case KIND_DONE: {
      const session = sessions.get(a);
      if (session !== undefined) session._receiveDone(s1);
      break;
    }
    default:
      break;
  }
}

native.setHost((kind, a, b, s1, s2) => {
  try {
    dispatch(kind, a, b, s1, s2);
  } catch (error) {
    // A bug in the facade must not take down the host process from a native callback.
    process.emitWarning(`enclave-broker-rs: internal dispatch error: ${error && error.stack ? error.stack : error}`);
  }
});

function register(key, session) {
  sessions.set(key, session);
}

function unregister(key) {
  sessions.delete(key);
}

function runStarted() {
  if (runsInFlight++ === 0) native.keepAlive(true);
}

function runEnded() {
  if (--runsInFlight === 0) native.keepAlive(false);
}

// Counts for leak checks in tests: sessions awaiting completion, tool calls whose handler
// is running, executions keeping Node alive.
function _counts() {
  return { sessions: sessions.size, toolSignals: toolSignals.size, runsInFlight };
}

module.exports = { register, unregister, runStarted, runEnded, toolSignals, _counts };
