// Attacks on the host process itself, each run in a fresh child process so a crash fails
// one test instead of the whole file: parser recursion, single huge allocations inside
// built-ins (V8 fatal OOM), heap the limit does not count (ArrayBuffer backing stores),
// built-ins that outrun the timeout, and console output reaching the host's stdout.
// The safe outcome for every case: the child exits normally, the script ends with a
// sandboxed error, and the same broker then runs `return 1 + 1`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MEMORY_MESSAGE, MiB, enginesOf, memoryMessage, runInChild } from './helpers.mjs';

// Runs that end at a limit within a second; their timeout is out of a loaded machine's reach.
const SMALL = { limits: { toolTimeoutMs: 20000 }, enclave: { memoryLimit: 32 * MiB } };

const memoryExceeded = (message = MEMORY_MESSAGE) => ({
  success: false,
  error: { message: expect.stringMatching(message), name: 'MemoryLimitError', code: 'MEMORY_LIMIT_EXCEEDED' },
});

// What every survivable run looks like, with the outcome filled in.
function survived(outcome) {
  return {
    status: 0,
    signal: null,
    report: { outcome, after: 2, elapsedMs: expect.any(Number), peakRssMiB: expect.any(Number) },
  };
}

const summary = ({ status, signal, report }) => ({ status, signal, report });

describe('parser recursion', () => {
  const deep = {
    '10,000 nested parentheses (20 KB)': '('.repeat(10000) + '1' + ')'.repeat(10000),
    '10,000 nested array literals': '['.repeat(10000) + ']'.repeat(10000),
    '20,000 nested blocks': '{'.repeat(20000) + '}'.repeat(20000),
    '20,000 nested arrow functions': '()=>'.repeat(20000) + '1',
  };
  for (const [label, code] of Object.entries(deep)) {
    it(`a script of ${label} is a VALIDATION_ERROR, not a host crash`, async () => {
      const r = await runInChild(code, SMALL);
      expect(summary(r)).toStrictEqual(
        survived({
          success: false,
          error: { message: expect.stringMatching(/^Failed to parse AgentScript code: /), name: 'SyntaxError', code: 'VALIDATION_ERROR' },
        }),
      );
    });
  }

  it('5,000 nested parentheses are refused by V8, without a position it does not know', async () => {
    const r = await runInChild('('.repeat(5000) + '1' + ')'.repeat(5000), SMALL);
    expect(summary(r)).toStrictEqual(
      survived({
        success: false,
        error: {
          message: 'Failed to parse AgentScript code: Maximum call stack size exceeded',
          name: 'SyntaxError',
          code: 'VALIDATION_ERROR',
        },
      }),
    );
  });
});

describe('single huge allocations inside built-ins', () => {
  it('JSON.stringify of a 2**28-character string with the default 128 MiB limit', async () => {
    const r = await runInChild("JSON.stringify('x'.repeat(2 ** 28)); return 1;", {});
    expect(summary(r)).toStrictEqual(survived(memoryExceeded(memoryMessage(128))));
  });

  const bombs = {
    "'x'.repeat(2**27).split('')": "'x'.repeat(2 ** 27).split(''); return 1;",
    'encodeURIComponent of 2**26 two-byte characters': "return encodeURIComponent('\\u00e9'.repeat(2 ** 26)).length;",
    "'x'.repeat(2**28).toUpperCase()": "return 'x'.repeat(2 ** 28).toUpperCase().length;",
  };
  for (const [label, code] of Object.entries(bombs)) {
    it(`${label} with a 32 MiB limit ends as MEMORY_LIMIT_EXCEEDED`, async () => {
      expect(summary(await runInChild(code, SMALL))).toStrictEqual(survived(memoryExceeded()));
    });
  }

  it("'x,'.repeat(2**27).split(',') with the default config does not hit V8's fatal invalid-size check", async () => {
    const r = await runInChild("return 'x,'.repeat(2 ** 27).split(',').length;", {});
    expect(summary(r)).toStrictEqual(survived(memoryExceeded(memoryMessage(128))));
  });
});

describe('memory a single built-in call takes past the limit', () => {
  it('flattening a 256 MiB rope with a 32 MiB limit ends as MEMORY_LIMIT_EXCEEDED', async () => {
    const r = await runInChild("const s = 'x'.repeat(2 ** 28); return s.charCodeAt(5);", SMALL);
    expect(summary(r)).toStrictEqual(survived(memoryExceeded()));
  });

  it('returning a 2**28-character string with a 32 MiB limit ends as MEMORY_LIMIT_EXCEEDED', async () => {
    // The 256 MiB JSON text is built before the size check; the limit was passed.
    const r = await runInChild("return 'x'.repeat(2 ** 28);", SMALL);
    expect(summary(r)).toStrictEqual(survived(memoryExceeded()));
  });

  it('a 30-million-element array with a 32 MiB limit ends as MEMORY_LIMIT_EXCEEDED', async () => {
    const r = await runInChild('return new Array(3e7).fill(0).length;', SMALL);
    expect(summary(r)).toStrictEqual(survived(memoryExceeded()));
  });

});

describe('ArrayBuffer backing stores (outside the V8 heap)', () => {
  it('1 GiB of touched ArrayBuffer memory with a 32 MiB limit ends as MEMORY_LIMIT_EXCEEDED', async () => {
    const code = `
      const keep = [];
      for (let i = 0; i < 4; i++) { const b = new Float64Array(2 ** 25); for (let j = 0; j < b.length; j += 512) b[j] = 1; keep.push(b); }
      return keep.length;`;
    const r = await runInChild(code, SMALL);
    expect(summary(r)).toStrictEqual(survived(memoryExceeded()));
    expect(r.report.peakRssMiB).toBeLessThan(512);
  });

  it('an 8 GiB ArrayBuffer with a 32 MiB limit is not handed out', async () => {
    const r = await runInChild('return new ArrayBuffer(2 ** 33).byteLength;', SMALL);
    expect(summary(r)).toStrictEqual(survived(memoryExceeded()));
  });
});

// Resizable ArrayBuffers and Intl.Segmenter hold memory outside the engine's accounting,
// so the sandbox does not offer them.
const notOffered = (message) => ({ success: false, error: { message, name: 'TypeError', code: 'EXECUTION_ERROR' } });

describe('memory allocated outside the V8 heap and the ArrayBuffer allocator', () => {
  it('4 GiB of touched resizable ArrayBuffers with a 32 MiB limit: resizable buffers are refused', async () => {
    const code = `
      const keep = [];
      for (let i = 0; i < 4; i++) {
        const b = new ArrayBuffer(0, { maxByteLength: 2 ** 32 });
        b.resize(2 ** 30);
        const u = new Uint8Array(b);
        for (let j = 0; j < u.length; j += 4096) u[j] = 1;
        keep.push(b);
      }
      return keep.length;`;
    const r = await runInChild(code, SMALL);
    expect(summary(r)).toStrictEqual(survived(notOffered('Resizable ArrayBuffers are not available in the sandbox')));
    expect(r.report.peakRssMiB).toBeLessThan(512);
  });

  it('ICU copies held by Intl.Segmenter segments with a 32 MiB limit: Intl.Segmenter is not offered', async () => {
    const code = `
      const keep = [];
      const text = 'x '.repeat(2 ** 20);
      for (;;) { const s = new Intl.Segmenter('en', { granularity: 'word' }).segment(text); s.containing(5); keep.push(s); }`;
    const r = await runInChild(code, { limits: { toolTimeoutMs: 20000 }, enclave: { memoryLimit: 32 * MiB } });
    expect(summary(r)).toStrictEqual(survived(notOffered('Intl.Segmenter is not a constructor')));
    expect(r.report.peakRssMiB).toBeLessThan(512);
  });
});

describe('built-ins that outrun the timeout', () => {
  // The builtin finishes long after the run should have stopped; the memory limit is out of
  // its reach (20 s timeouts for runs that stop within a second: bounds a loaded machine cannot
  // reach).
  it("'ab'.repeat(2**26).replace(/a/g, 'xyz') with 32 MiB ends as MEMORY_LIMIT_EXCEEDED, long before its timeout, within 512 MiB", async () => {
    const r = await runInChild("return 'ab'.repeat(2 ** 26).replace(/a/g, 'xyz').length;", { limits: { toolTimeoutMs: 20000 }, enclave: { memoryLimit: 32 * MiB } });
    expect(summary(r)).toStrictEqual(survived(memoryExceeded()));
    expect(r.report.elapsedMs).toBeLessThan(10000);
    expect(r.report.peakRssMiB).toBeLessThan(512);
  });

  // lastIndexOf walks all 2^32 - 1 holes in C++ (about 30 s) without allocating, so the
  // memory limit cannot end it first (`fill`, which allocates, would race the two).
  it('new Array(2**32 - 1).lastIndexOf(1) with a 200 ms timeout ends as TIMEOUT within 512 MiB', async () => {
    const r = await runInChild('new Array(2 ** 32 - 1).lastIndexOf(1); return 1;', { limits: { toolTimeoutMs: 200 } });
    expect(summary(r)).toStrictEqual(
      survived({ success: false, error: { message: 'Script execution timed out after 200ms', name: 'Error', code: 'TIMEOUT' } }),
    );
    expect(r.report.elapsedMs).toBeLessThan(10000);
    expect(r.report.peakRssMiB).toBeLessThan(512);
  });
});

describe('built-ins that outrun the memory limit', () => {
  // The heap limit is reached long before the timeout, but `fill` only looks at the
  // termination when it is done: the run must end at the limit, not at the timeout or at
  // the engine process's memory ceiling.
  it('new Array(5e7).fill(0) with a 32 MiB limit ends at the heap limit, not at its 20 s timeout', async () => {
    const r = await runInChild('new Array(5e7).fill(0); return 1;', { limits: { toolTimeoutMs: 20000 }, enclave: { memoryLimit: 32 * MiB } });
    expect(summary(r)).toStrictEqual(survived(memoryExceeded(/^Memory limit exceeded: the script's heap reached the 32\.00MB limit \(\d+\.\d\dMB in use\)$/)));
    expect(r.report.elapsedMs).toBeLessThan(10000);
    expect(r.report.peakRssMiB).toBeLessThan(320);
  });
});

describe('the host process output', () => {
  it('a console flood never reaches the host\u2019s stdout or stderr', async () => {
    const code = "for (let i = 0; i < 100000; i++) { console.log('flood', i); console.error('err', i); } return 'done';";
    const r = await runInChild(code, { limits: { toolTimeoutMs: 20000 } });
    expect(summary(r)).toStrictEqual(survived({ success: true, value: 'done' }));
    expect(r.stdout).toBe(`REPORT ${JSON.stringify(r.report)}\n`);
    expect(r.stderr).toBe('');
  });
});

// A process that has exited (and is at most a zombie) is not alive.
function alive(pid) {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('the broker process dying', () => {
  // A spinning script reads nothing, so its engine cannot see the broker's pipe close;
  // it must still end rather than spin on as an orphan (here with no timeout at all).
  it('ends its engine processes, even one spinning without a timeout', async () => {
    const script = `
      const { createBroker } = require(${JSON.stringify(new URL('../../index.js', import.meta.url).pathname)});
      const broker = createBroker({ limits: { toolTimeoutMs: 0 } });
      broker.execute('while (true) {}');
      setTimeout(() => process.stdout.write('spinning\\n'), 500);
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const engines = enginesOf(child.pid);
    expect(engines.length).toBeGreaterThan(0);
    child.kill('SIGKILL');
    const deadline = Date.now() + 10000;
    while (engines.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(engines.filter(alive)).toEqual([]);
  }, 20000);
});
