// The one definition of how a JavaScript value becomes plain JSON data when it crosses
// the sandbox boundary. It runs in two realms: inside every sandbox context (to copy the
// script's return value out; `sandbox.rs` compiles it into the prelude) and in the host
// facade (to copy tool results in; `lib/value-codec.js` evaluates this same text, which
// the addon carries). It defines `createValueCodec` and nothing else. Intrinsics are
// captured when the codec is created, so code that later patches `Array.prototype`, `JSON`
// or `Object` cannot change how values are copied.
//
// Rules (the original's sanitizer, minus its 500-property cap: sizes are capped in bytes):
// undefined properties are dropped, NaN/Infinity become null, bigint becomes its decimal
// string, Date its ISO string (null when invalid), Map a plain object, Set an array,
// RegExp its source text, Error `{name, message}`, typed arrays arrays of numbers, and a
// reference back to an ancestor `'[Circular]'`. Functions and symbols are rejected.
// Keys `__proto__`, `constructor` and `prototype` are dropped.

// Error texts per crossing; the tool-result texts are the original's.
const MESSAGES = {
  tool: {
    subject: 'Tool handler return value',
    fn: 'Tool handler returned a function. Functions cannot be returned to sandbox code as they could be used for code injection or host scope access.',
    symbol: 'Tool handler returned a symbol. Symbols cannot be returned to sandbox code.',
  },
  result: {
    subject: 'Return value',
    fn: 'Return value contains a function. Functions cannot leave the sandbox.',
    symbol: 'Return value contains a symbol. Symbols cannot leave the sandbox.',
  },
  global: {
    subject: 'Custom globals',
    fn: 'Custom globals contain a function. Globals are copied into the sandbox as plain data, so functions cannot be given.',
    symbol: 'Custom globals contain a symbol. Globals are copied into the sandbox as plain data.',
  },
};

// True when `fn` accepts `value` as its receiver: a brand check that prototype tricks
// (Symbol.toStringTag, a patched instanceof) cannot fool.
function brand(fn, value) {
  try {
    fn(value);
    return true;
  } catch {
    return false;
  }
}

function createValueCodec() {
  const call = Function.prototype.call;
  const uncurry = (fn) => call.bind(fn);
  const { isArray } = Array;
  const ObjectKeys = Object.keys;
  const ObjectCreate = Object.create;
  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ObjectPrototype = Object.prototype;
  const JSONStringify = JSON.stringify;
  const StringCtor = String;
  const NumberIsFinite = Number.isFinite;
  const ArrayPrototypePush = uncurry(Array.prototype.push);
  const ArrayPrototypePop = uncurry(Array.prototype.pop);
  const ArrayPrototypeIncludes = uncurry(Array.prototype.includes);
  const DatePrototypeGetTime = uncurry(Date.prototype.getTime);
  const DatePrototypeToISOString = uncurry(Date.prototype.toISOString);
  const BigIntPrototypeToString = uncurry(BigInt.prototype.toString);
  const mapSizeGetter = uncurry(Object.getOwnPropertyDescriptor(Map.prototype, 'size').get);
  const setSizeGetter = uncurry(Object.getOwnPropertyDescriptor(Set.prototype, 'size').get);
  const MapPrototypeEntries = uncurry(Map.prototype.entries);
  const SetPrototypeValues = uncurry(Set.prototype.values);
  const MapIteratorNext = uncurry(Object.getPrototypeOf(new Map().entries()).next);
  const SetIteratorNext = uncurry(Object.getPrototypeOf(new Set().values()).next);
  const regexpSourceGetter = uncurry(Object.getOwnPropertyDescriptor(RegExp.prototype, 'source').get);
  const regexpFlagsGetter = uncurry(Object.getOwnPropertyDescriptor(RegExp.prototype, 'flags').get);
  const TypedArray = Object.getPrototypeOf(Uint8Array);
  const typedArrayLengthGetter = uncurry(Object.getOwnPropertyDescriptor(TypedArray.prototype, 'length').get);
  const ErrorIsError = typeof Error.isError === 'function' ? Error.isError : null;
  const ObjectPrototypeToString = uncurry(Object.prototype.toString);
  const TypeErrorCtor = TypeError;
  const RangeErrorCtor = RangeError;
  const DANGEROUS_KEYS = ['__proto__', 'constructor', 'prototype'];

  function isError(value) {
    if (ErrorIsError !== null) return ErrorIsError(value);
    return ObjectPrototypeToString(value) === '[object Error]';
  }

  // `kind` ('tool', 'result' or 'global') picks the error texts.
  function toPlain(value, maxDepth, kind) {
    const messages = MESSAGES[kind];
    const ancestors = [];

    function convert(v, depth) {
      switch (typeof v) {
        case 'undefined':
          return undefined;
        case 'string':
        case 'boolean':
          return v;
        case 'number':
          return NumberIsFinite(v) ? v : null;
        case 'bigint':
          return BigIntPrototypeToString(v);
        case 'function':
          throw new TypeErrorCtor(messages.fn);
        case 'symbol':
          throw new TypeErrorCtor(messages.symbol);
        default:
          break;
      }
      if (v === null) return null;
      if (depth > maxDepth) {
        throw new RangeErrorCtor(
          `${messages.subject} exceeds maximum depth (${maxDepth}). This limit prevents deeply nested objects that could cause stack overflow.`,
        );
      }
      if (ArrayPrototypeIncludes(ancestors, v)) return '[Circular]';
      ArrayPrototypePush(ancestors, v);
      let out;
      // Arrays and plain objects (almost all data) skip the brand checks, each of which
      // costs a thrown exception when it does not match. An exotic object whose prototype
      // was swapped for Object.prototype is copied as the plain object it now claims to be.
      if (isArray(v)) {
        out = convertArray(v, depth);
      } else {
        const proto = ObjectGetPrototypeOf(v);
        out = proto === ObjectPrototype || proto === null ? convertObject(v, depth) : convertExotic(v, depth);
      }
      ArrayPrototypePop(ancestors);
      return out;
    }

    function convertArray(v, depth) {
      const out = [];
      const length = v.length;
      for (let i = 0; i < length; i++) {
        const item = convert(v[i], depth + 1);
        ArrayPrototypePush(out, item === undefined ? null : item);
      }
      return out;
    }

    function convertObject(v, depth) {
      const out = ObjectCreate(null);
      const keys = ObjectKeys(v);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        if (ArrayPrototypeIncludes(DANGEROUS_KEYS, key)) continue;
        const item = convert(v[key], depth + 1);
        if (item !== undefined) out[key] = item;
      }
      return out;
    }

    function convertExotic(v, depth) {
      if (brand(DatePrototypeGetTime, v)) {
        const time = DatePrototypeGetTime(v);
        return time === time ? DatePrototypeToISOString(v) : null;
      }
      if (brand(regexpSourceGetter, v)) {
        return `/${regexpSourceGetter(v)}/${regexpFlagsGetter(v)}`;
      }
      let out;
      if (brand(typedArrayLengthGetter, v)) {
        out = [];
        const length = typedArrayLengthGetter(v);
        for (let i = 0; i < length; i++) {
          ArrayPrototypePush(out, convert(v[i], depth + 1));
        }
      } else if (brand(mapSizeGetter, v)) {
        out = ObjectCreate(null);
        const it = MapPrototypeEntries(v);
        for (let step = MapIteratorNext(it); !step.done; step = MapIteratorNext(it)) {
          const key = StringCtor(step.value[0]);
          if (ArrayPrototypeIncludes(DANGEROUS_KEYS, key)) continue;
          const item = convert(step.value[1], depth + 1);
          if (item !== undefined) out[key] = item;
        }
      } else if (brand(setSizeGetter, v)) {
        out = [];
        const it = SetPrototypeValues(v);
        for (let step = SetIteratorNext(it); !step.done; step = SetIteratorNext(it)) {
          const item = convert(step.value, depth + 1);
          ArrayPrototypePush(out, item === undefined ? null : item);
        }
      } else if (isError(v)) {
        out = ObjectCreate(null);
        out.name = StringCtor(v.name);
        out.message = StringCtor(v.message);
      } else {
        out = convertObject(v, depth);
      }
      return out;
    }

    return convert(value, 0);
  }

  // JSON text of the plain copy, or undefined when the value is undefined.
  function toJson(value, maxDepth, kind) {
    const plain = toPlain(value, maxDepth, kind);
    return plain === undefined ? undefined : JSONStringify(plain);
  }

  return { toPlain, toJson };
}
