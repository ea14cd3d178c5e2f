// Sandbox prelude. The engine compiles `(function (native) { 'use strict';
// <value-codec.js> <this file> })` in every fresh context and calls it when the context
// is prepared, before any user code exists. `native` holds the engine's functions for this
// context; they are captured here and never reachable from user code. The returned
// functions (per-execution configuration, result encoder, error describer) are kept by the
// engine, not exposed to the script.

const global = globalThis;
const nativeCallTool = native.callTool;
const nativeConsole = native.console;
const codec = createValueCodec();
const PromiseReject = Promise.reject.bind(Promise);
const PromiseAll = Promise.all.bind(Promise);
const TypeErrorCtor = TypeError;
const ArrayIsArray = Array.isArray;
const JSONStringify = JSON.stringify;
const JSONParse = JSON.parse;
const StringCtor = String;
const ObjectDefineProperty = Object.defineProperty;
const ObjectFreeze = Object.freeze;
const ObjectKeys = Object.keys;
const ArrayPrototypeJoin = Function.prototype.call.bind(Array.prototype.join);
const ArrayPrototypeMap = Function.prototype.call.bind(Array.prototype.map);
const ErrorIsError = typeof Error.isError === 'function' ? Error.isError : null;
const ObjectPrototypeToString = Function.prototype.call.bind(Object.prototype.toString);

// Host-reaching or cross-execution surfaces a script must not have. `eval` and
// `new Function` stay defined but throw: code generation from strings is off per context.
for (const name of ['WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry']) {
  delete global[name];
}

// Resizable ArrayBuffers reserve and commit memory outside the engine's ArrayBuffer budget,
// so `ArrayBuffer` is replaced by a constructor that refuses `maxByteLength` and never
// hands options to the real one (which is unreachable afterwards: the prototype's
// `constructor` and `Symbol.species` lead to the replacement).
const RealArrayBuffer = ArrayBuffer;
const ReflectConstruct = Reflect.construct;
function ArrayBufferConstructor(length, options) {
  if (new.target === undefined) throw new TypeErrorCtor("Constructor ArrayBuffer requires 'new'");
  if (options !== null && (typeof options === 'object' || typeof options === 'function')) {
    if (options.maxByteLength !== undefined) {
      throw new TypeErrorCtor('Resizable ArrayBuffers are not available in the sandbox');
    }
  }
  return ReflectConstruct(RealArrayBuffer, [length], new.target === ArrayBufferConstructor ? RealArrayBuffer : new.target);
}
ObjectDefineProperty(ArrayBufferConstructor, 'name', { value: 'ArrayBuffer' });
ObjectDefineProperty(ArrayBufferConstructor, 'prototype', { value: RealArrayBuffer.prototype, writable: false });
ObjectDefineProperty(ArrayBufferConstructor, 'isView', { value: RealArrayBuffer.isView, writable: true, configurable: true });
ObjectDefineProperty(ArrayBufferConstructor, Symbol.species, {
  get() {
    return this;
  },
  configurable: true,
});
ObjectDefineProperty(RealArrayBuffer.prototype, 'constructor', {
  value: ArrayBufferConstructor,
  writable: true,
  configurable: true,
});
ObjectDefineProperty(global, 'ArrayBuffer', {
  value: ArrayBufferConstructor,
  writable: true,
  enumerable: false,
  configurable: true,
});

// Segmenter results hold ICU memory the engine cannot count.
if (typeof Intl === 'object' && Intl !== null) delete Intl.Segmenter;

function defineGlobal(name, value) {
  ObjectDefineProperty(global, name, { value, writable: false, enumerable: false, configurable: false });
}

function callTool(name, args) {
  if (typeof name !== 'string') {
    return PromiseReject(new TypeErrorCtor('Tool name must be a string'));
  }
  if (args === null || typeof args !== 'object' || ArrayIsArray(args)) {
    return PromiseReject(new TypeErrorCtor('Tool arguments must be an object'));
  }
  let json;
  try {
    json = JSONStringify(args);
  } catch {
    return PromiseReject(new TypeErrorCtor('Tool arguments must be JSON-serializable'));
  }
  return nativeCallTool(name, json);
}

// parallel(items, fn): fn(item, index, items) for every item up front, then Promise.all.
// Also accepts an array of functions with no callback (each is called).
async function parallel(items, fn) {
  if (!ArrayIsArray(items)) throw new TypeErrorCtor('parallel() requires an array');
  if (items.length > 100) throw new TypeErrorCtor('parallel() is limited to 100 items');
  if (fn === undefined) {
    const calls = ArrayPrototypeMap(items, (item) => {
      if (typeof item !== 'function') {
        throw new TypeErrorCtor('parallel() requires a callback function as second argument');
      }
      return item();
    });
    return PromiseAll(calls);
  }
  if (typeof fn !== 'function') {
    throw new TypeErrorCtor('parallel() requires a callback function as second argument');
  }
  return PromiseAll(ArrayPrototypeMap(items, (item, index) => fn(item, index, items)));
}

function isErrorObject(value) {
  if (ErrorIsError !== null) return ErrorIsError(value);
  return ObjectPrototypeToString(value) === '[object Error]';
}

function formatArg(arg) {
  if (typeof arg === 'string') return arg;
  if (arg === undefined) return 'undefined';
  if (arg === null) return 'null';
  if (typeof arg === 'object') {
    if (isErrorObject(arg)) return `${StringCtor(arg.name)}: ${StringCtor(arg.message)}`;
    try {
      const json = JSONStringify(arg);
      if (json !== undefined) return json;
    } catch {
      // fall through to String()
    }
  }
  try {
    return StringCtor(arg);
  } catch {
    return '[object]';
  }
}

function makeConsoleMethod(level) {
  return function (...args) {
    nativeConsole(level, ArrayPrototypeJoin(ArrayPrototypeMap(args, formatArg), ' '));
  };
}

const sandboxConsole = {
  log: makeConsoleMethod(0),
  info: makeConsoleMethod(1),
  warn: makeConsoleMethod(2),
  error: makeConsoleMethod(3),
  debug: makeConsoleMethod(4),
};
sandboxConsole.trace = sandboxConsole.debug;
sandboxConsole.dir = sandboxConsole.log;
ObjectFreeze(sandboxConsole);

ObjectDefineProperty(global, 'console', {
  value: sandboxConsole,
  writable: true,
  enumerable: false,
  configurable: true,
});
defineGlobal('callTool', callTool);
defineGlobal('parallel', parallel);

// Custom globals (`enclave.globals`): fresh, deeply frozen copies made in this realm.
function deepFreeze(value) {
  if (value !== null && typeof value === 'object') {
    const keys = ObjectKeys(value);
    for (let i = 0; i < keys.length; i++) deepFreeze(value[keys[i]]);
    ObjectFreeze(value);
  }
  return value;
}

let maxDepth = 20;

// Per-execution options, applied when the prepared context is handed an execution.
function configure(options) {
  maxDepth = options.maxDepth;
  if (options.globals !== undefined && options.globals !== null) {
    const globals = JSONParse(options.globals);
    if (globals === null || typeof globals !== 'object' || ArrayIsArray(globals)) {
      throw new TypeErrorCtor('Custom globals must be an object');
    }
    const names = ObjectKeys(globals);
    for (let i = 0; i < names.length; i++) {
      defineGlobal(names[i], deepFreeze(globals[names[i]]));
    }
  }
}

function encodeResult(value) {
  return codec.toJson(value, maxDepth, 'result');
}

function describeError(error) {
  let name = 'Error';
  let message;
  try {
    if (error !== null && (typeof error === 'object' || typeof error === 'function')) {
      const m = error.message;
      message = m === undefined ? StringCtor(error) : StringCtor(m);
      if (isErrorObject(error)) {
        const n = error.name;
        if (typeof n === 'string' && n !== '') name = n;
      }
    } else {
      message = StringCtor(error);
    }
  } catch {
    message = 'Uncaught exception (its message could not be read)';
  }
  // An array, read string by string by the engine: JSON text would lose a message
  // containing a lone surrogate.
  return [name, message];
}

return { configure, encodeResult, describeError };
