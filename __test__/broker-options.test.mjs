// Seed S003 in docs/compatibility.md's broker options (lib/broker-options.js): `securityLevel`, the top-level form of
// the original's `enclave.securityLevel` (its preset of result depth), and `mode`.
import { describe, expect, it } from 'vitest';
import { EnclaveBroker, createBroker } from '../index.mjs';
import { brokersDisposedAfterEach } from './helpers/index.mjs';

const makeBroker = brokersDisposedAfterEach();
const LEVELS = { STRICT: 5, SECURE: 10, STANDARD: 20, PERMISSIVE: 50 };
const message = (key, got) => `${key} must be one of 'STRICT', 'SECURE', 'STANDARD', 'PERMISSIVE', got ${got}`;

// A script returning an object at depth `depth`: the outermost object is at depth 0, as the
// original counts, so depth d is d + 1 objects one inside the other.
const nested = (depth) => `let v = 1; for (let i = 0; i <= ${depth}; i++) v = { v }; return v;`;

describe('securityLevel', () => {
  for (const [level, depth] of Object.entries(LEVELS)) {
    it(`${level} allows results ${depth} deep, not ${depth + 1}, for return values and tool results`, async () => {
      const broker = makeBroker({ securityLevel: level });
      broker.tool('deep', {
        handler: ({ n }) => {
          let v = 1;
          for (let i = 0; i <= n; i++) v = { v };
          return v;
        },
      });
      expect((await broker.execute(nested(depth))).success).toBe(true);
      const over = await broker.execute(nested(depth + 1));
      expect(over.error.message).toBe(`Return value exceeds maximum depth (${depth}). This limit prevents deeply nested objects that could cause stack overflow.`);
      const tool = await broker.execute(`try { await callTool('deep', { n: ${depth + 1} }); return 'ok' } catch (e) { return e.code }`);
      expect(tool.value).toBe('TOOL_ERROR');
    });
  }

  it('enclave.securityLevel wins over the top-level key; enclave.maxSanitizeDepth over both', async () => {
    const both = makeBroker({ securityLevel: 'PERMISSIVE', enclave: { securityLevel: 'STRICT' } });
    expect((await both.execute(nested(6))).success).toBe(false);
    const depth = makeBroker({ securityLevel: 'STRICT', enclave: { maxSanitizeDepth: 8 } });
    expect((await depth.execute(nested(8))).success).toBe(true);
  });

  it('an unknown level is a TypeError, top-level or in enclave, and EnclaveBroker takes the key too', async () => {
    expect(() => createBroker({ securityLevel: 'secure' })).toThrow(new TypeError(message('securityLevel', '"secure"')));
    expect(() => createBroker({ securityLevel: null })).toThrow(new TypeError(message('securityLevel', 'null')));
    expect(() => createBroker({ enclave: { securityLevel: 'MAXIMUM' } })).toThrow(new TypeError(message('enclave.securityLevel', '"MAXIMUM"')));
    expect(() => new EnclaveBroker({ securityLevel: 1 })).toThrow(new TypeError(message('securityLevel', '1')));
    const broker = new EnclaveBroker({ securityLevel: 'STRICT' });
    expect((await broker.execute(nested(6))).success).toBe(false);
    await broker.close();
  });
});

describe('mode', () => {
  it("'embedded' is the default and the explicit choice", async () => {
    for (const config of [{}, { mode: 'embedded' }]) {
      expect((await makeBroker(config).execute('return 6 * 7')).value).toBe(42);
    }
  });

  it("'extracted' needs a runtime worker to be named; anything else is a TypeError", async () => {
    expect(() => createBroker({ mode: 'extracted' })).toThrow(new TypeError(
      "mode 'extracted' needs a runtime worker: give runtimeUrl (e.g. 'ws://localhost:3001') or runtimeUrls, and start one with createRuntimeWorker() or the enclave-runtime CLI",
    ));
    expect(() => createBroker({ mode: 'cluster' })).toThrow(new TypeError("mode must be 'embedded' or 'extracted', got \"cluster\""));
    expect(() => new EnclaveBroker({ mode: 'extracted' })).toThrow(/needs a runtime worker/);
    // With a URL it is a broker; runs wait for the worker (__test__/extracted-*.test.mjs).
    const broker = makeBroker({ mode: 'extracted', runtimeUrl: 'ws://127.0.0.1:1' });
    expect(broker.mode).toBe('extracted');
    expect(broker.getRuntimeStatus().map((endpoint) => endpoint.url)).toEqual(['ws://127.0.0.1:1/ws']);
  });
});
