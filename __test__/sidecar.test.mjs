// The reference sidecar (`enclave.sidecar: {enabled: true, ...}`, contract section 1.T): large
// strings stay on the host and the script holds `__REF_<uuid>__` strings.
import { describe, expect, it } from 'vitest';
import { brokersDisposedAfterEach, listeningBrokersClosedAfterEach, ndjsonLines, postJson } from './helpers/index.mjs';

const newBroker = brokersDisposedAfterEach();
const serve = listeningBrokersClosedAfterEach();
const REF = /^__REF_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}__$/;
const CONCAT_REFUSED =
  'Cannot concatenate reference IDs. Pass references directly to callTool arguments. Composite handles are disabled in the current security configuration.';
const TEMPLATE_REFUSED =
  'Cannot concatenate reference IDs in template literals. Pass references directly to callTool arguments. Composite handles are disabled in the current security configuration.';

// A broker with the sidecar on (extraction at 16 bytes unless given) and tools that make and
// measure text; `seen` records what the measuring tool received.
function sidecarBroker(sidecar = {}, enclave = {}) {
  const seen = [];
  const broker = newBroker({ enclave: { ...enclave, sidecar: { enabled: true, extractionThreshold: 16, ...sidecar } } })
    .tool('doc', { handler: ({ size = 100 }) => 'd'.repeat(size) })
    .tool('nested', { handler: () => ({ text: 'n'.repeat(100) }) })
    .tool('measure', {
      handler: (args) => {
        seen.push(args);
        return JSON.stringify(args).length;
      },
    });
  return { broker, seen };
}

const valueOf = (r) => (r.success ? r.value : { code: r.error.code, message: r.error.message });

describe('the reference sidecar', () => {
  it('is off unless enabled: large strings cross and concatenate as usual', async () => {
    const broker = newBroker({ enclave: { sidecar: { enabled: false, extractionThreshold: 1 } } }).tool('doc', {
      handler: () => 'd'.repeat(100),
    });
    const r = await broker.execute("const d = await callTool('doc', {}); return [d.length, (d + '!').length, `${d}`.length]");
    expect(valueOf(r)).toStrictEqual([100, 101, 100]);
  });

  it('lifts a whole-string tool result over the threshold; the script holds its reference', async () => {
    const { broker, seen } = sidecarBroker();
    const r = await broker.execute(`
      const d = await callTool('doc', {});
      const small = await callTool('doc', { size: 15 });
      const nested = await callTool('nested', {});
      await callTool('measure', { text: d });
      return [d.length, small.length, nested.text.length, d];`);
    const [length, small, nested, ref] = valueOf(r);
    // Property access sees the reference string (44 characters), not the data.
    expect([length, small, nested]).toStrictEqual([44, 15, 100]);
    // A reference returned from the script shows up verbatim.
    expect(ref).toMatch(REF);
    // The tool got the data.
    expect(seen).toStrictEqual([{ text: 'd'.repeat(100) }]);
  });

  it('lifts string literals over the threshold before the run; small ones stay', async () => {
    const { broker, seen } = sidecarBroker();
    const r = await broker.execute(`
      const big = 'abcdefghijklmnopqrstuvwxyz';
      const template = \`0123456789abcdefghij\`;
      const small = 'short';
      await callTool('measure', { big, template, small });
      return [big.length, template.length, small];`);
    expect(valueOf(r)).toStrictEqual([44, 44, 'short']);
    expect(seen).toStrictEqual([{ big: 'abcdefghijklmnopqrstuvwxyz', template: '0123456789abcdefghij', small: 'short' }]);
  });

  it('resolves references anywhere in the arguments, and the tool_call event shows the data', async () => {
    const { broker, seen } = sidecarBroker();
    const events = [];
    await broker.execute(
      `const d = await callTool('doc', {});
       await callTool('measure', { list: [d, { inner: d }], n: 1, flag: true });`,
      { onEvent: (event) => events.push(event) },
    );
    const data = 'd'.repeat(100);
    expect(seen).toStrictEqual([{ list: [data, { inner: data }], n: 1, flag: true }]);
    const calls = events.filter((e) => e.type === 'tool_call').map((e) => e.payload.args);
    expect(calls[1]).toStrictEqual({ list: [data, { inner: data }], n: 1, flag: true });
  });

  it('refuses arguments that would exceed maxResolvedSize, and unknown references, with the original messages', async () => {
    const { broker, seen } = sidecarBroker({ maxResolvedSize: 150 });
    const r = await broker.execute(`
      const d = await callTool('doc', {});
      const outcomes = [];
      // Built at run time from short pieces: a literal that long would be lifted itself.
      const unknown = ['__REF_', '123e4567', '-e89b-42d3-', 'a456-', '426614174000', '__'].join('');
      for (const args of [{ a: d }, { a: d, b: d }, { a: unknown }]) {
        try { outcomes.push(await callTool('measure', args)); } catch (e) { outcomes.push([e.code, e.message]); }
      }
      return outcomes;`);
    expect(valueOf(r)).toStrictEqual([
      108,
      [
        'REFERENCE_RESOLUTION_LIMIT',
        'Arguments would exceed maximum resolved size when references are expanded. Reduce the amount of data passed to the tool.',
      ],
      ['REFERENCE_RESOLUTION_FAILED', 'Unknown reference: __REF_123e4567-e89b-42d3-a456-426614174000__'],
    ]);
    expect(seen).toHaveLength(1);
  });

  it('with allowComposites (STANDARD), concatenating a reference gives a composite handle the host joins', async () => {
    const { broker, seen } = sidecarBroker();
    const r = await broker.execute(`
      const d = await callTool('doc', {});
      const joined = '<' + d;
      const templated = \`[\${d}]\`;
      await callTool('measure', { joined, templated });
      return [joined, templated.__parts.length, 1 + 2, 'a' + 1, \`x\${1 + 1}\`];`);
    const [joined, templateParts, sum, text, template] = valueOf(r);
    expect(joined).toMatchObject({ __type: 'composite', __operation: 'concat', __estimatedSize: 0 });
    expect(joined.__parts[0]).toBe('<');
    expect(joined.__parts[1]).toMatch(REF);
    expect([templateParts, sum, text, template]).toStrictEqual([3, 3, 'a1', 'x2']);
    const data = 'd'.repeat(100);
    expect(seen).toStrictEqual([{ joined: `<${data}`, templated: `[${data}]` }]);
  });

  it('without composites (STRICT, or allowComposites: false), concatenation and templates throw', async () => {
    for (const [sidecar, enclave] of [
      [{}, { securityLevel: 'STRICT' }],
      [{ allowComposites: false }, {}],
    ]) {
      const { broker } = sidecarBroker(sidecar, enclave);
      const r = await broker.execute(`
        const d = await callTool('doc', {});
        const errors = [];
        try { d + '!'; } catch (e) { errors.push(e.message); }
        try { \`\${d}!\`; } catch (e) { errors.push(e.message); }
        return [errors, 'ok' + 1, \`\${'a'}b\`];`);
      expect(valueOf(r)).toStrictEqual([[CONCAT_REFUSED, TEMPLATE_REFUSED], 'ok1', 'ab']);
    }
  });

  it("uses the security level's threshold: STRICT lifts at 64 KiB", async () => {
    const broker = newBroker({ enclave: { securityLevel: 'STRICT', sidecar: { enabled: true } } }).tool('doc', {
      handler: ({ size }) => 'd'.repeat(size),
    });
    const r = await broker.execute(
      "return [(await callTool('doc', { size: 65535 })).length, (await callTool('doc', { size: 65536 })).length]",
    );
    expect(valueOf(r)).toStrictEqual([65535, 44]);
  });

  it('a literal over maxReferenceSize fails the run with the original message', async () => {
    const { broker } = sidecarBroker({ maxReferenceSize: 20 });
    const r = await broker.execute(`return '${'x'.repeat(30)}'.length`);
    expect(valueOf(r)).toStrictEqual({ code: 'EXECUTION_ERROR', message: 'Reference size 30 bytes exceeds maximum 20 bytes' });
  });

  it('a tool result the sidecar cannot hold crosses as data', async () => {
    const { broker } = sidecarBroker({ maxTotalSize: 150 });
    const r = await broker.execute("return [(await callTool('doc', {})).length, (await callTool('doc', {})).length]");
    expect(valueOf(r)).toStrictEqual([44, 100]);
  });

  it('refuses bad options with a TypeError', () => {
    expect(() => newBroker({ enclave: { sidecar: 'on' } }).createSession()).toThrow('enclave.sidecar must be an object');
    expect(() => newBroker({ enclave: { sidecar: { enabled: true, extractionThreshold: -1 } } }).createSession()).toThrow(
      'enclave.sidecar.extractionThreshold must be a non-negative number, got -1',
    );
    expect(() => newBroker({ enclave: { sidecar: { enabled: true, allowComposites: 'yes' } } }).createSession()).toThrow(
      'enclave.sidecar.allowComposites must be a boolean, got "yes"',
    );
  });

  it("applies to the sessions an EnclaveBroker's routes create", async () => {
    const { base } = await serve({ enclave: { sidecar: { enabled: true, extractionThreshold: 16 } } }, (b) =>
      b.tool('doc', { handler: () => 'd'.repeat(100) }).tool('measure', { handler: ({ text }) => text.length }),
    );
    const res = await postJson(`${base}/execute`, {
      code: "const d = await callTool('doc', {}); return [d.length, await callTool('measure', { text: d })]",
    });
    expect(ndjsonLines(await res.text()).at(-1).payload.result).toStrictEqual([44, 100]);
  });

  it('a deeply nested script is rewritten off Node\'s stack and fails as data, and the broker goes on', async () => {
    const { broker } = sidecarBroker();
    const deep = await broker.execute(`return ${'!'.repeat(100001)}0`);
    expect(deep.success).toBe(false);
    expect(deep.error.code).toBe('VALIDATION_ERROR');
    expect(valueOf(await broker.execute('return 1 + 2'))).toBe(3);
  });

  it("a reference is only good in its own session's run", async () => {
    const { broker, seen } = sidecarBroker();
    const first = await broker.execute("return await callTool('doc', {})");
    expect(first.value).toMatch(REF);
    const second = await broker.execute(
      `try { await callTool('measure', { text: ${JSON.stringify(first.value)} }); } catch (e) { return [e.code, e.message]; }`,
      { session: { enclaveConfig: { sidecar: { enabled: true, extractionThreshold: 1000 } } } },
    );
    expect(valueOf(second)).toStrictEqual(['REFERENCE_RESOLUTION_FAILED', `Unknown reference: ${first.value}`]);
    expect(seen).toStrictEqual([]);
  });
});
