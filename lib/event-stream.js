// The events of one `execute()` as an async iterable (C2 in docs/compatibility.md): the promise it returns
// stays a real Promise<SessionFinalResult>, and `for await` over the same value yields every
// event from `session_init` to `final`.
//
// Nothing is buffered until iteration begins, so a caller who only awaits pays nothing.
// An iterator starts from the session's own history (kept until the session object is
// collected, even after the run removed it from its manager) and then follows the live
// stream, so it may begin before, during or after the run and still sees each event once.
'use strict';

// `run.session` is set once the session exists (synchronously, unless creation failed);
// `run.filter(event)` decides what the iterator yields.
function attachEventStream(promise, run) {
  Object.defineProperty(promise, Symbol.asyncIterator, {
    value: () => iterate(promise, run),
    configurable: true,
  });
  return promise;
}

function iterate(promise, run) {
  let queue = [];
  let head = 0;
  let last = 0;
  let settled = false;
  let failure;
  let failed = false;
  let stopped = false;
  let unsubscribe;
  let waiters = [];

  const wake = () => {
    const woken = waiters;
    waiters = [];
    for (const resolve of woken) resolve();
  };
  const push = (event) => {
    if (event.seq <= last) return;
    last = event.seq;
    if (run.filter(event)) queue.push(event);
    wake();
  };
  const catchUp = () => {
    if (run.session === undefined) return;
    for (const event of run.session.getEvents()) push(event);
  };
  const stop = () => {
    stopped = true;
    if (unsubscribe !== undefined) unsubscribe();
    unsubscribe = undefined;
    queue = [];
    head = 0;
  };

  if (run.session !== undefined && !run.finished) unsubscribe = run.session.onEvent(push);
  catchUp();
  promise.then(
    () => {
      // Every event reached the listeners before the promise resolved; the history
      // catches anything a late iterator subscribed too late for.
      if (!stopped) catchUp();
      settled = true;
      if (unsubscribe !== undefined) unsubscribe();
      wake();
    },
    (error) => {
      settled = true;
      failed = true;
      failure = error;
      if (unsubscribe !== undefined) unsubscribe();
      wake();
    },
  );

  return {
    async next() {
      for (;;) {
        if (stopped) return { value: undefined, done: true };
        if (head < queue.length) {
          const value = queue[head];
          queue[head++] = undefined;
          if (head === queue.length) {
            queue = [];
            head = 0;
          }
          return { value, done: false };
        }
        if (settled) {
          stop();
          if (failed) {
            failed = false;
            throw failure;
          }
          return { value: undefined, done: true };
        }
        await new Promise((resolve) => waiters.push(resolve));
      }
    },
    // Leaving a `for await` early ends the iteration only: the run goes on, and the promise
    // still settles with its result.
    async return() {
      stop();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

module.exports = { attachEventStream };
