// Every code block of README.md runs as written, so the README cannot drift from the package.
//
// Blocks in js, javascript, mjs, cjs, ts or typescript are run, each in a fresh Node process
// in a project that installed the package: as CommonJS when they `require` and do not
// `import`, else as an ES module (TypeScript is transpiled first). A block passes when it
// exits by itself with status 0 and writes nothing to stderr. Blocks in sh, bash, json or
// text are shown, never run; any other language fails the test.
//
// A block that cannot run says why in its info string, as in ```js no-run: <reason>; that
// must stay rare (MAX_NO_RUN) and the reason must say something (at least 20 characters).
//
// What a block leaves undefined on purpose (your CRM client, your response stream) comes from
// STAND_INS below, prepended to the block. The names a block uses without defining are found
// by the TypeScript compiler; one without a stand-in fails the test, and so does a stand-in no
// block needs. Environment variables a block reads come from ENV; REDIS_URL is a real
// redis-server started for the run.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/index.mjs';
import { startRedis } from './helpers/redis.mjs';
import { runSample, sampleProject, transpile, typeCheck, undefinedNames } from './helpers/samples.mjs';

const RUN = new Set(['js', 'javascript', 'mjs', 'cjs', 'ts', 'typescript']);
const SHOWN = new Set(['sh', 'bash', 'json', 'text']);
const MAX_NO_RUN = 2;

// Things a block leaves undefined on purpose, one definition each (valid in both module kinds).
const STAND_INS = {
  crm: "const crm = { list: async (team, key, { signal }) => (signal.aborted ? [] : [{ name: 'Ada' }, { name: 'Linus' }]) };",
  stream: 'const stream = { write: (chunk) => chunk.length };',
  db: 'const db = { query: async (args) => [args] };',
  api: 'const api = { call: async (name, args) => ({ name, args }) };',
  sessionId: "const sessionId = 's_readme';",
};

// Environment a block reads: its secrets, and port 0 so that a listening example binds a free port.
const ENV = { CRM_KEY: 'crm-key-for-the-readme', TOKEN: 'token-for-the-readme', PORT: '0' };

// ```lang info\n...``` blocks, with their line number and info string.
function readBlocks() {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [];
  const fence = /^```([^\n`]*)\n([\s\S]*?)^```[ \t]*$/gm;
  for (let m = fence.exec(text); m !== null; m = fence.exec(text)) {
    const info = m[1].trim();
    const [lang = ''] = info.split(/\s+/);
    const noRun = /^\S+\s+no-run:?\s*(.*)$/.exec(info);
    blocks.push({
      line: text.slice(0, m.index).split('\n').length,
      lang,
      info,
      code: m[2],
      noRun: noRun ? noRun[1].trim() : undefined,
    });
  }
  return blocks;
}

const blocks = readBlocks();
const runnable = blocks.filter((b) => RUN.has(b.lang) && b.noRun === undefined);
for (const b of runnable) {
  const commonJs = /\brequire\(/.test(b.code) && !/^\s*import\s/m.test(b.code);
  b.file = `readme-line-${b.line}.${commonJs ? 'cjs' : 'mjs'}`;
  b.source = b.lang.startsWith('t') ? transpile(b.code) : b.code;
}

describe('README code blocks', () => {
  let project;
  let missing;
  let redis;

  beforeAll(async () => {
    project = sampleProject();
    redis = await startRedis();
    const files = Object.fromEntries(runnable.map((b) => [b.file, b.source]));
    const diagnostics = typeCheck(files, { allowJs: true, checkJs: true });
    missing = [];
    for (const b of runnable) {
      b.standIns = undefinedNames(diagnostics[b.file] ?? []);
      missing.push(...b.standIns.filter((name) => !(name in STAND_INS)).map((name) => `line ${b.line}: ${name}`));
    }
  }, 120000);

  afterAll(async () => {
    project?.cleanup();
    await redis?.cleanup();
  });

  it('has runnable blocks, and every block is runnable, shown, or marked no-run with a reason', () => {
    expect(runnable.length).toBeGreaterThan(5);
    for (const b of blocks) {
      expect(RUN.has(b.lang) || SHOWN.has(b.lang), `line ${b.line}: unknown block language "${b.lang}"`).toBe(true);
      if (b.noRun !== undefined) expect(b.noRun.length, `line ${b.line}: no-run needs a reason`).toBeGreaterThanOrEqual(20);
    }
    expect(blocks.filter((b) => b.noRun !== undefined).length).toBeLessThanOrEqual(MAX_NO_RUN);
  });

  it('every name a block leaves undefined has a stand-in, and every stand-in is needed', () => {
    expect(missing, 'define these in their blocks (or add a stand-in here with a reason)').toEqual([]);
    const used = new Set(runnable.flatMap((b) => b.standIns));
    expect(Object.keys(STAND_INS).filter((name) => !used.has(name))).toEqual([]);
  });

  for (const b of runnable) {
    const firstLine = b.code.split('\n').find((l) => l.trim() !== '' && !l.startsWith('//')) ?? '';
    it(`line ${b.line}: ${firstLine.slice(0, 60)}`, { timeout: 90000 }, async () => {
      const prelude = b.standIns.map((name) => STAND_INS[name]).join('\n');
      const run = await runSample(project.dir, b.file, `${prelude}\n${b.source}`, { env: { ...ENV, REDIS_URL: redis.url } });
      expect(run.stderr).toBe('');
      expect(run.signal).toBeNull();
      expect(run.status).toBe(0);
    });
  }
});
