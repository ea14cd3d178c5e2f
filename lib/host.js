// The facade's end of the channel from the Rust core (tool calls have their own channel
// per manager or session: tool-runner.js). Messages arrive in the order the core produced
// them: announcements of new events, aborts of tool signals (before the completion of the
// run that abandoned the call), the completion of executions, callbacks a server asks for (`validate`, `keyGenerator`,
// `authorize`),
// server shutdowns, and the session lifecycle a broker with event listeners watches.
// While any execution is in flight, or a server listens, the channel keeps Node's event
// loop alive; otherwise it does not.
'use strict';

const native = require('./native');
const { abortToolCall, toolSignals } = require('./tool-runner');

const KIND_EVENTS = 0;
const KIND_TOOL_ABORT = 2;
const KIND_DONE = 3;
const KIND_CALLBACK = 4;
const KIND_SERVER_CLOSED = 5;
const KIND_SESSION_FINISHED = 6;
const KIND_SESSION_CREATED = 7;
const KIND_WORKER_STOPPED = 8;
const KIND_CLUSTER_READY = 9;
const KIND_CLUSTER_CLOSED = 10;
const KIND_CLUSTER_ANSWER = 11;
const KIND_CLUSTER_EVENTS = 12;

// Session key → the BrokerSession that receives its messages.
const sessions = new Map();
// Server key → {callbacks: {validate?, keyGenerator?, authorize?}, onClosed, onSessionCreated?}.
const servers = new Map();
// Runtime worker key → what to call once its graceful stop is done.
const workers = new Map();
// Session key → what to call with the session's final result (see watchFinished).
const finishWatchers = new Map();
// Cluster key → {ready(error?), closed()}: a broker joining and leaving the shared state.
const clusters = new Map();
// Request key → {resolve, reject} of a question to the shared state; follow key → {onLines, onDone}.
const clusterAnswers = new Map();
const clusterFollows = new Map();
let holds = 0;

// `authorize(principal, action, session, request)` for each session the server asks about
// (all of one request's at once); anything but `true` denies.
function authorizeEach(fn, argument, request) {
  const asked = JSON.parse(argument);
  const { principal, action } = asked;
  return Promise.all(
    asked.sessions.map((session) =>
      Promise.resolve()
        .then(() => fn(principal, action, session, request))
        .then(
          (granted) => granted === true,
          () => false,
        ),
    ),
  );
}

function callUser(name, fn, argument, request) {
  if (name === 'validate') return fn(argument, request);
  if (name === 'authorize') return authorizeEach(fn, argument, request);
  return fn(request);
}

function answerCallback(requestKey, server, name, argument, requestJson) {
  const fn = server === undefined ? undefined : server.callbacks[name];
  if (typeof fn !== 'function') {
    native.resolveCallback(requestKey, false, `No ${name} callback`);
    return;
  }
  let pending;
  try {
    pending = Promise.resolve(callUser(name, fn, argument, JSON.parse(requestJson)));
  } catch (error) {
    pending = Promise.reject(error);
  }
  pending.then(
    (value) => {
      if (name === 'validate') {
        const result = value !== null && typeof value === 'object' ? value : { valid: false };
        native.resolveCallback(requestKey, true, JSON.stringify({ ...result, valid: result.valid === true }));
      } else if (name === 'authorize') {
        native.resolveCallback(requestKey, true, JSON.stringify(value));
      } else {
        native.resolveCallback(requestKey, true, String(value));
      }
    },
    (error) => native.resolveCallback(requestKey, false, String(error && error.message ? error.message : error)),
  );
}

function dispatch(kind, a, b, s1, s2, s3) {
  switch (kind) {
    case KIND_EVENTS: {
      const session = sessions.get(a);
      if (session !== undefined) session._receiveEvents();
      break;
    }
    case KIND_TOOL_ABORT:
      abortToolCall(a);
      break;
    case KIND_DONE: {
      const session = sessions.get(a);
      if (session !== undefined) session._receiveDone(s1);
      break;
    }
    case KIND_CALLBACK:
      answerCallback(a, servers.get(b), s1, s2, s3);
      break;
    case KIND_SERVER_CLOSED: {
      const server = servers.get(a);
      servers.delete(a);
      if (server !== undefined) server.onClosed();
      break;
    }
    case KIND_SESSION_FINISHED: {
      const watcher = finishWatchers.get(a);
      finishWatchers.delete(a);
      // Empty: the session was dropped without ever having a result.
      if (watcher !== undefined && s1 !== '') watcher(JSON.parse(s1));
      break;
    }
    case KIND_SESSION_CREATED: {
      const server = servers.get(a);
      if (server !== undefined && server.onSessionCreated !== undefined) server.onSessionCreated(s1);
      break;
    }
    case KIND_CLUSTER_READY: {
      const cluster = clusters.get(a);
      if (cluster !== undefined) cluster.ready(s1 === '' ? undefined : s1);
      break;
    }
    case KIND_CLUSTER_CLOSED: {
      const cluster = clusters.get(a);
      clusters.delete(a);
      if (cluster !== undefined) cluster.closed();
      break;
    }
    case KIND_CLUSTER_ANSWER: {
      const waiter = clusterAnswers.get(a);
      clusterAnswers.delete(a);
      if (waiter !== undefined) {
        if (b === 1) waiter.resolve(s1);
        else waiter.reject(new Error(s1));
      }
      break;
    }
    case KIND_CLUSTER_EVENTS: {
      const follower = clusterFollows.get(a);
      if (follower === undefined) break;
      if (b === 1) clusterFollows.delete(a);
      follower.onLines(s1, b === 1);
      break;
    }
    case KIND_WORKER_STOPPED: {
      const onStopped = workers.get(a);
      workers.delete(a);
      if (onStopped !== undefined) onStopped();
      break;
    }
    default:
      break;
  }
}

native.setHost((kind, a, b, s1, s2, s3) => {
  try {
    dispatch(kind, a, b, s1, s2, s3);
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

function registerServer(key, callbacks, onClosed, onSessionCreated) {
  servers.set(key, { callbacks, onClosed, onSessionCreated });
}

// `ready(error?)` runs once the cluster `key` is connected (or could not be); `closed()`
// once it has left.
function registerCluster(key, ready, closed) {
  clusters.set(key, { ready, closed });
}

// The answer to the shared-state request `key`.
function awaitClusterAnswer(key) {
  return new Promise((resolve, reject) => clusterAnswers.set(key, { resolve, reject }));
}

// `onLines(ndjson, done)` for each page of the followed log `key`, until done or forgotten.
function followCluster(key, onLines) {
  clusterFollows.set(key, { onLines });
}

function forgetClusterFollow(key) {
  clusterFollows.delete(key);
}

function registerWorker(key, onStopped) {
  workers.set(key, onStopped);
}

// `onFinished(result)` runs once the native session `handle` has its final result, however
// the session ends; the watcher is forgotten if the session is dropped without one.
function watchFinished(handle, onFinished) {
  finishWatchers.set(handle.key, onFinished);
  handle.watchFinished();
}

// Something that must keep Node alive (an execution in flight, a listening server).
function hold() {
  if (holds++ === 0) native.keepAlive(true);
}

function release() {
  if (--holds === 0) native.keepAlive(false);
}

// Counts for leak checks in tests: sessions awaiting completion, tool calls whose handler
// is running, things keeping Node alive, sessions watched for the broker's events.
function _counts() {
  return { sessions: sessions.size, toolSignals: toolSignals.size, runsInFlight: holds, finishWatchers: finishWatchers.size };
}

module.exports = {
  register,
  unregister,
  registerServer,
  registerCluster,
  awaitClusterAnswer,
  followCluster,
  forgetClusterFollow,
  registerWorker,
  watchFinished,
  hold,
  release,
  runStarted: hold,
  runEnded: release,
  _counts,
};
