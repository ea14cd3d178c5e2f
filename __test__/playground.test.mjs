// The playground that `npm start` serves, in a real headless Chromium (Debian's `chromium`,
// driven by playwright-core): the page runs scripts through POST /execute and shows the
// stream as a timeline, decrypts an encrypted stream with WebCrypto, cancels, and survives
// a dropped connection by replaying from the last seq. Outcomes are read from the page's
// rows and its record of every seq the wire delivered, never from timing.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, waitFor } from './helpers/index.mjs';

const CHROMIUM = '/usr/bin/chromium';
// Flags known to work on these machines: no sandbox (root), and no background traffic to
// the outside, which this network refuses.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const RUN_TIMEOUT_MS = 30_000;

let server;
let serverOutput = '';
let serverExited;
let browser;
let page;
let pageUrl;
let pageResponse;
const problems = [];

// The `npm start` script itself, on a free port; resolves with the page URL it prints.
async function startPlayground() {
  server = spawn(process.execPath, [path.join(ROOT, 'examples', 'playground.js')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  server.stdout.on('data', (chunk) => {
    serverOutput += chunk;
  });
  server.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  serverExited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  let exited = false;
  serverExited.then(() => {
    exited = true;
  });
  await waitFor(() => exited || /page: +http:\S+/.test(serverOutput), 20_000, 'the playground to print its URL');
  if (exited) throw new Error(`examples/playground.js exited early:\n${serverOutput}\n${stderr}`);
  return serverOutput.match(/page: +(http:\S+)/)[1];
}

async function screenshot(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `playground-${name}.png`);
  await page.screenshot({ path: file });
  process.stdout.write(`playground screenshot: ${file}\n`);
}

// The timeline as data: one entry per row.
function readTimeline() {
  return page.$$eval('#timeline > li', (rows) =>
    rows.map((row) => ({
      kind: row.dataset.kind,
      seqs: row.dataset.seqs.split(' ').filter(Boolean).map(Number),
      summary: row.querySelector('.summary').textContent,
      detail: row.querySelector('.detail').textContent,
      outcome: row.dataset.outcome,
      code: row.dataset.code,
      heartbeats: Number(row.dataset.heartbeats ?? 0),
      envelopes: row.querySelectorAll('.wire .envelope').length,
      wireText: row.querySelector('.wire')?.textContent ?? '',
    })),
  );
}

// Every seq the wire delivered, in arrival order, with the page's counts.
function readWire() {
  return page.$eval('#wire', (element) => ({
    seqs: element.dataset.seqs.split(' ').filter(Boolean).map(Number),
    repeated: Number(element.dataset.repeated),
    missing: Number(element.dataset.missing),
    reconnects: Number(element.dataset.reconnects),
  }));
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
// Rows that say what happened, without the heartbeats a loaded machine may interleave.
const meaningful = (rows) => rows.filter((r) => r.kind !== 'heartbeat').map((r) => [r.kind, r.summary]);

async function startRun({ example, code, encrypt = false, timeoutMs }) {
  if (example !== undefined) await page.selectOption('#example', example);
  if (code !== undefined) await page.fill('#code', code);
  if (timeoutMs !== undefined) await page.fill('#timeout', String(timeoutMs));
  await page.setChecked('#encrypt', encrypt);
  const run = Number(await page.getAttribute('#status', 'data-run')) + 1;
  await page.click('#run');
  return run;
}

async function waitForEnd(run) {
  await page.waitForSelector(`#status[data-run="${run}"]:is([data-state="finished"], [data-state="error"])`, {
    timeout: RUN_TIMEOUT_MS,
  });
  return { rows: await readTimeline(), wire: await readWire(), status: await page.textContent('#status') };
}

async function runToEnd(options) {
  return waitForEnd(await startRun(options));
}

// The seqs of all rows, flattened and sorted: every event the page was given shows in a row.
const rowSeqs = (rows) => rows.flatMap((r) => r.seqs).toSorted((a, b) => a - b);

describe('the playground page in Chromium', () => {
  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is missing (${CHROMIUM}): the playground test drives Debian's chromium package. ` +
          'Install it with `apt-get install -y chromium` (.ci/run does this when it is absent).',
      );
    }
    pageUrl = await startPlayground();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    pageResponse = await page.goto(pageUrl);
    await page.waitForSelector('#status[data-state="idle"]');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (server !== undefined && server.exitCode === null) {
      server.kill('SIGTERM');
      await serverExited;
    }
  });

  it('is served with a strict Content-Security-Policy and uses no inline code', async () => {
    expect(pageResponse.status()).toBe(200);
    const policy = pageResponse.headers()['content-security-policy'];
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("require-trusted-types-for 'script'");
    expect(policy).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(pageResponse.headers()['x-content-type-options']).toBe('nosniff');
    const inline = await page.evaluate(() => ({
      scripts: document.querySelectorAll('script:not([src])').length,
      styles: document.querySelectorAll('style, [style]').length,
      handlers: [...document.querySelectorAll('*')].flatMap((e) =>
        [...e.attributes].filter((a) => a.name.startsWith('on')).map((a) => `${e.tagName}.${a.name}`),
      ),
    }));
    expect(inline).toStrictEqual({ scripts: 0, styles: 0, handlers: [] });
    const examples = await page.$$eval('#example option', (options) => options.map((o) => o.value));
    expect(examples).toEqual(expect.arrayContaining(['two-tools', 'slow', 'failing', 'large-list', 'spin']));
  });

  let plaintextRows;

  it('runs an example with two tool calls and a console.log, and shows each as it arrives', async () => {
    const { rows, wire, status } = await runToEnd({ example: 'two-tools' });
    expect(status).toBe('Completed');
    expect(meaningful(rows)).toStrictEqual([
      ['session', 'session started'],
      ['tool', 'users:list({"team":"engines"})'],
      ['console', 'found 2 users'],
      ['tool', 'greeting:compose({"names":["Ada","Linus"]})'],
      ['final', 'result {"message":"Hello, Ada and Linus!","count":2}'],
    ]);
    const tools = rows.filter((r) => r.kind === 'tool');
    // Each call's row stands for its tool_call, two tool_progress and its tool_result_applied
    // (and any heartbeat that fell while it ran).
    for (const tool of tools) {
      expect(tool.seqs).toHaveLength(4 + tool.heartbeats);
      expect(tool.detail).toMatch(/^result applied in \d+ ms( · \d+ heartbeats? meanwhile)?$/);
    }
    const final = rows.at(-1);
    expect(final).toMatchObject({ kind: 'final', outcome: 'ok' });
    expect(final.detail).toMatch(/^\d+ ms in the broker · 2 tool calls · 14 bytes of console output$/);
    expect(wire).toStrictEqual({ seqs: range(1, final.seqs[0]), repeated: 0, missing: 0, reconnects: 0 });
    expect(rowSeqs(rows)).toStrictEqual(wire.seqs);
    expect(rows.every((r) => r.envelopes === 0)).toBe(true);
    plaintextRows = rows;

    // The terminal told the same story, one line each (its last line may come after the
    // page's: the two hear of the run on different paths).
    const sessionTag = rows[0].detail.slice(0, 10);
    const terminal = () =>
      serverOutput
        .split('\n')
        .filter((line) => line.includes(` ${sessionTag} `))
        .map((line) => line.replace(/^\S+ \S+ /, '').replace(/ in \d+ ms/, ' in N ms'));
    await waitFor(() => terminal().some((line) => line.startsWith('completed')), 10_000, 'the terminal');
    const lines = terminal();
    expect(lines[0]).toBe('session started');
    expect(lines.at(-1)).toBe('completed in N ms, 2 tool calls: {"message":"Hello, Ada and Linus!","count":2}');
    expect(lines.toSorted()).toStrictEqual(
      [
        'session started',
        '→ users:list {"team":"engines"}',
        '← users:list ok in N ms: [{"id":1,"name":"Ada","team":"engines"},{"id":3,"name":"Linus","team":"engines"}]',
        'console: found 2 users',
        '→ greeting:compose {"names":["Ada","Linus"]}',
        '← greeting:compose ok in N ms: "Hello, Ada and Linus!"',
        'completed in N ms, 2 tool calls: {"message":"Hello, Ada and Linus!","count":2}',
      ].toSorted(),
    );
    await screenshot('plaintext');
  });

  it('decrypts an encrypted stream with WebCrypto into the same rows, while the wire carries only ciphertext', async () => {
    // What the browser receives, taken on its way in: the test passes the request on and
    // keeps a copy of the response (which the page then gets whole rather than streamed; the
    // other runs stream).
    let wireBody;
    await page.route(
      (url) => url.pathname === '/execute',
      async (route) => {
        const response = await route.fetch();
        wireBody = await response.text();
        await route.fulfill({ response, body: wireBody });
      },
    );
    const { rows, wire, status } = await runToEnd({ example: 'two-tools', encrypt: true }).finally(() =>
      page.unrouteAll(),
    );
    expect(status).toBe('Completed');
    expect(meaningful(rows)).toStrictEqual(meaningful(plaintextRows));
    expect(rows[0].detail).toMatch(/^s_\S+ · encrypted: AES-256-GCM under key k_[0-9a-f-]{36}$/);
    expect(wire).toStrictEqual({ seqs: range(1, rows.at(-1).seqs[0]), repeated: 0, missing: 0, reconnects: 0 });
    // Every event after session_init came as an envelope, shown on the row it decrypted into.
    expect(rows[0].envelopes).toBe(0);
    for (const row of rows.slice(1)) expect(row.envelopes).toBe(row.seqs.length);
    expect(rows.map((r) => r.wireText).join('')).not.toMatch(/Ada|engines|users:list/);

    // The wire: plaintext session_init, then only `enc` envelopes, none of which shows the data.
    const lines = wireBody.trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((l) => l.seq)).toStrictEqual(wire.seqs);
    expect(lines[0].type).toBe('session_init');
    expect(lines[0].payload.encryption.enabled).toBe(true);
    expect(lines.slice(1).every((l) => l.type === 'enc' && typeof l.payload.ciphertextB64 === 'string')).toBe(true);
    expect(JSON.stringify(lines.slice(1))).not.toMatch(/Ada|engines|users:list|found/);
    await screenshot('encrypted');
  });

  it('cancels a spinning script: the run ends with SESSION_CANCELLED', async () => {
    const run = await startRun({ example: 'spin', timeoutMs: 60_000 });
    await page.waitForSelector('#timeline [data-kind="session"]');
    await page.click('#cancel:not([disabled])');
    const { rows, wire, status } = await waitForEnd(run);
    expect(status).toBe('Failed: SESSION_CANCELLED');
    const final = rows.at(-1);
    expect(final).toMatchObject({ kind: 'final', outcome: 'error', code: 'SESSION_CANCELLED' });
    expect(final.summary).toMatch(/^error SESSION_CANCELLED: /);
    expect(wire.repeated + wire.missing).toBe(0);
    await screenshot('cancelled');
  });

  it('drops the connection mid-run and replays from the last seq: no event is missing or repeated', async () => {
    // A run that never ends by itself, so the drop is mid-run whatever the machine's speed.
    const run = await startRun({
      code: `for (let i = 1; ; i++) {
  console.log('tick', i);
  await callTool('clock:sleep', { ms: 150 });
}`,
      timeoutMs: 60_000,
    });
    await page.waitForFunction(() => document.querySelectorAll('#timeline [data-kind="console"]').length >= 2);
    await page.click('#drop:not([disabled])');
    // Live events after the replay: two more ticks than the last one before it.
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('#timeline > li')];
        const reconnect = rows.findIndex((r) => r.dataset.kind === 'connection' && /reconnected/.test(r.textContent));
        if (reconnect === -1) return false;
        // oxlint-disable-next-line unicorn/consistent-function-scoping -- runs in the page, apart from this module
        const tick = (r) => Number(/^tick (\d+)$/.exec(r.querySelector('.summary').textContent)?.[1] ?? 0);
        const before = Math.max(...rows.slice(0, reconnect).map(tick));
        return rows.slice(reconnect).some((r) => tick(r) >= before + 2);
      },
      undefined,
      { timeout: RUN_TIMEOUT_MS },
    );
    await page.click('#cancel:not([disabled])');
    const { rows, wire } = await waitForEnd(run);

    const notes = rows.filter((r) => r.kind === 'connection').map((r) => r.summary);
    expect(notes).toHaveLength(2);
    const [, droppedAfter] = notes[0].match(/^connection dropped after #(\d+)$/).map(Number);
    expect(notes[1]).toBe(`reconnected: replay from #${droppedAfter + 1}`);
    const final = rows.at(-1);
    expect(final).toMatchObject({ kind: 'final', code: 'SESSION_CANCELLED' });
    expect(droppedAfter).toBeLessThan(final.seqs[0]);
    // Exactly once each, in order, across the drop.
    expect(wire).toStrictEqual({ seqs: range(1, final.seqs[0]), repeated: 0, missing: 0, reconnects: 1 });
    expect(rowSeqs(rows)).toStrictEqual(wire.seqs);
    expect(rows.some((r) => r.kind === 'anomaly')).toBe(false);
    const ticks = rows.filter((r) => r.kind === 'console').map((r) => r.summary);
    expect(ticks).toStrictEqual(ticks.map((_, i) => `tick ${i + 1}`));
    await screenshot('reconnected');
  });

  it('logged no error or warning, and the browser enforces the policy', async () => {
    expect(problems).toStrictEqual([]);
    // Last, since each probe makes Chromium report a violation. (DevTools' own evaluation
    // is exempt from the policy's eval ban, so code from strings is probed through the
    // sinks a page would use.)
    const inline = await page.addScriptTag({ content: 'window.__inlineRan = true' }).then(
      () => 'allowed',
      (error) => error.message,
    );
    expect(inline).toMatch(/TrustedScript/);
    const probes = await page.evaluate(() => {
      // oxlint-disable-next-line unicorn/consistent-function-scoping -- runs in the page, apart from this module
      const attempt = (fn) => {
        try {
          fn();
          return 'allowed';
        } catch (error) {
          return error.name;
        }
      };
      return {
        inlineRan: window.__inlineRan === true,
        // oxlint-disable-next-line no-implied-eval -- the probe: the page's policy must refuse code from a string
        stringTimer: attempt(() => setTimeout('window.__timerRan = true', 0)),
        innerHTML: attempt(() => {
          document.createElement('div').innerHTML = '<b>x</b>';
        }),
      };
    });
    expect(probes).toStrictEqual({ inlineRan: false, stringTimer: 'TypeError', innerHTML: 'TypeError' });
  });
});
