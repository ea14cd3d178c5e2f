// The seed API's broker `middleware` (S001, C27 in docs/compatibility.md): functions `(call, next)` around
// every tool handler, onion-style. They run after the arguments were validated (so they
// see what the handler would), with `call = {name, args, context}`; `next(call)` runs the
// rest of the chain and then the handler with `call.args`, resolving to its value. A
// middleware that throws fails the call as a throwing handler would.
'use strict';

function checkMiddleware(middleware) {
  if (middleware === undefined) return undefined;
  if (!Array.isArray(middleware) || !middleware.every((fn) => typeof fn === 'function')) {
    throw new TypeError('middleware must be an array of functions');
  }
  return middleware.length === 0 ? undefined : [...middleware];
}

// `invoke(args)` runs the handler; the result runs `invoke` inside the chain.
function runThroughMiddleware(middleware, call, invoke) {
  const step = (index, current) => {
    if (index === middleware.length) return Promise.resolve(invoke(current.args));
    let called = false;
    const next = (nextCall = current) => {
      if (called) return Promise.reject(new Error('next() called more than once by a middleware'));
      called = true;
      return step(index + 1, nextCall === null || typeof nextCall !== 'object' ? current : nextCall);
    };
    try {
      return Promise.resolve(middleware[index](current, next));
    } catch (error) {
      return Promise.reject(error);
    }
  };
  return step(0, call);
}

module.exports = { checkMiddleware, runThroughMiddleware };
