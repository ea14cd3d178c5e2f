// The tool-result encoder's fast path (JSON.stringify of plain data) must give exactly the
// value codec's text, and leave everything else to the codec.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { brokersDisposedAfterEach } from './helpers/index.mjs';

const require = createRequire(import.meta.url);
const { createToolResultEncoder } = require('../lib/tool-result-json.js');
const { createValueCodec } = require('../lib/value-codec.js');

const encoder = createToolResultEncoder();
const newBroker = brokersDisposedAfterEach();
const codec = createValueCodec();

function outcome(fn) {
  try {
    return { json: fn() };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}

function nested(levels) {
  let v = { leaf: true };
  for (let i = 0; i < levels; i++) v = { v };
  return v;
}

const circular = { name: 'loop' };
circular.self = circular;
const shared = { x: 1 };
const sparse = [1];
sparse[2] = 3;
function Point() {
  this.x = 1;
}

const CASES = [
  ['a string', 'text', true],
  ['a number', 42, true],
  ['NaN and Infinity', [NaN, Infinity, -0], true],
  ['undefined', undefined, true],
  ['null', null, true],
  ['undefined in objects and arrays', { a: undefined, b: [undefined, 1] }, true],
  ['nested plain data', { items: [{ id: 1, tags: ['a'] }, { id: 2, tags: [] }], total: 2 }, true],
  ['a null-prototype object', Object.assign(Object.create(null), { a: 1 }), true],
  ['a sparse array', sparse, true],
  ['the same object twice (not a cycle)', { a: shared, b: shared }, true],
  ['20 levels', nested(19), true],
  ['21 levels', nested(21), false],
  ['a cycle', circular, false],
  ['a Date', { at: new Date(0) }, false],
  ['a Map and a Set', { m: new Map([['k', 1]]), s: new Set([1]) }, false],
  ['a bigint', { big: 10n }, false],
  ['a function', { fn() {} }, false],
  ['a symbol', Symbol('s'), false],
  ['a toJSON method', { toJSON: () => 'x' }, false],
  ['an own __proto__ key', JSON.parse('{"__proto__": {"polluted": true}, "a": 1}'), false],
  ['a constructor key', { constructor: 'x', a: 1 }, false],
  ['a class instance', new Point(), false],
  ['a Proxy', new Proxy({ a: 1 }, { get: () => 'proxied' }), false],
  ['a typed array', new Uint8Array([1, 2]), false],
  ['an Error', new TypeError('bad'), false],
  ['a boxed string', Object('boxed'), false],
];

describe('tool results as JSON text', () => {
  for (const [label, value, plain] of CASES) {
    it(`${label}: ${plain ? 'stringified directly' : 'left to the codec'}, with the codec's outcome`, () => {
      expect(encoder.isPlain(value, 20)).toBe(plain);
      expect(outcome(() => encoder.toJson(value, 20))).toStrictEqual(outcome(() => codec.toJson(value, 20, 'tool')));
    });
  }

  it('a getter that changes its answer between the check and the stringify still yields the codec text or valid JSON', () => {
    let reads = 0;
    const value = {
      get flip() {
        reads += 1;
        return reads === 1 ? 'first' : 10n;
      },
    };
    // The stringify throws on the bigint: the codec reads the getter again and converts it.
    expect(encoder.toJson(value, 20)).toBe('{"flip":"10"}');
  });

  it('Array.prototype.toJSON patched by the host sends arrays to the codec', () => {
    Reflect.set(Array.prototype, 'toJSON', () => 'patched');
    try {
      expect(encoder.isPlain([1, 2], 20)).toBe(false);
    } finally {
      Reflect.deleteProperty(Array.prototype, 'toJSON');
    }
    expect(encoder.isPlain([1, 2], 20)).toBe(true);
  });
});

describe('string tool results', () => {
  it('cross as themselves, lone surrogates included', async () => {
    const broker = newBroker().tool('text', { handler: ({ which }) => ['plain', 'é😀\n"\\', 'a\ud800b', '\udc00'][which] });
    const r = await broker.execute(`
      const out = [];
      for (let which = 0; which < 4; which++) {
        const t = await callTool('text', { which });
        out.push([t.length, Array.from(t, (c) => c.codePointAt(0))]);
      }
      return out;`);
    expect(r.value).toStrictEqual([
      [5, [112, 108, 97, 105, 110]],
      [6, [0xe9, 0x1f600, 10, 34, 92]],
      [3, [97, 0xd800, 98]],
      [1, [0xdc00]],
    ]);
  });
});
