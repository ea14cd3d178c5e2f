// Tool results as JSON text, at JSON.stringify's speed when they are plain data.
//
// The value codec (value-codec.js) defines how a host value becomes sandbox data: it builds a
// null-prototype copy of the whole value and then stringifies the copy, which for a large
// result costs several times the stringify itself. Almost every result is already plain
// data (what JSON.parse, a database driver or an HTTP client gives), and for plain data the
// codec's text is exactly JSON.stringify's. So a result is first checked, without copying:
// when it holds only strings, numbers, booleans, null, undefined, arrays and objects whose
// prototype is Object.prototype or null, with no `toJSON`, no `__proto__`/`constructor`/
// `prototype` key, no cycle, no Proxy and no more depth than allowed, it is stringified
// directly; anything else (a Date, a Map, a bigint, a function, a cycle, too deep) goes
// through the codec, which converts it or refuses it with its usual message.
'use strict';

const { types } = require('node:util');
const { createValueCodec } = require('./value-codec');

function createToolResultEncoder() {
  const codec = createValueCodec();
  const { isArray } = Array;
  const ObjectKeys = Object.keys;
  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ObjectPrototype = Object.prototype;
  const JSONStringify = JSON.stringify;
  const { isProxy } = types;

  // Whether JSON.stringify(value) is the codec's text for `value`. Proxies go to the codec
  // so that their traps run once, as they would there.
  function isPlain(value, maxDepth) {
    // ancestors[d] is the object being checked at depth d (a cycle revisits one of them).
    const ancestors = [];

    function check(v, depth) {
      switch (typeof v) {
        case 'string':
        case 'number':
        case 'boolean':
        case 'undefined':
          return true;
        case 'object':
          break;
        default:
          return false;
      }
      if (v === null) return true;
      if (depth > maxDepth || isProxy(v) || v.toJSON !== undefined) return false;
      for (let i = 0; i < depth; i++) if (ancestors[i] === v) return false;
      ancestors[depth] = v;
      let plain = true;
      if (isArray(v)) {
        const length = v.length;
        for (let i = 0; plain && i < length; i++) plain = check(v[i], depth + 1);
      } else {
        const proto = ObjectGetPrototypeOf(v);
        if (proto !== ObjectPrototype && proto !== null) return false;
        const keys = ObjectKeys(v);
        for (let i = 0; plain && i < keys.length; i++) {
          const key = keys[i];
          plain = key !== '__proto__' && key !== 'constructor' && key !== 'prototype' && check(v[key], depth + 1);
        }
      }
      return plain;
    }

    return check(value, 0);
  }

  // JSON text of a tool result (undefined for undefined); throws the codec's TypeError or
  // RangeError for what cannot cross.
  function toJson(value, maxDepth) {
    if (isPlain(value, maxDepth)) {
      try {
        return JSONStringify(value);
      } catch {
        // A getter that answered differently the second time: the codec decides.
      }
    }
    return codec.toJson(value, maxDepth, 'tool');
  }

  return { toJson, isPlain };
}

module.exports = { createToolResultEncoder };
