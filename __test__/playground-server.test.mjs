// `EnclaveBroker({ playground: true })`: the listen() server also serves the packaged
// playground page, from Rust, with a strict Content-Security-Policy. (The page itself, in a
// browser, is __test__/playground.test.mjs.)
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EnclaveBroker } from '../index.mjs';
import { ROOT, listeningBrokersClosedAfterEach, ndjsonLines, postJson } from './helpers/index.mjs';

const serve = listeningBrokersClosedAfterEach();

describe('playground: true', () => {
  it('serves every file of the packaged page under /playground/ with a strict policy', async () => {
    const { broker, base } = await serve({ playground: true });
    expect(broker.playgroundPath).toBe('/playground/');
    const index = await fetch(`${base}/playground/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const policy = index.headers.get('content-security-policy');
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await index.text()).toBe(fs.readFileSync(path.join(ROOT, 'playground', 'index.html'), 'utf8'));
    const types = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };
    for (const name of fs.readdirSync(path.join(ROOT, 'playground'))) {
      const response = await fetch(`${base}/playground/${name}`);
      expect(response.status, name).toBe(200);
      expect(response.headers.get('content-security-policy'), name).toBe(policy);
      const type = types[path.extname(name)];
      if (type !== undefined) expect(response.headers.get('content-type'), name).toBe(type);
      expect(Buffer.from(await response.arrayBuffer()).equals(fs.readFileSync(path.join(ROOT, 'playground', name))), name).toBe(true);
    }
  });

  it('redirects / to the page, answers unknown files with 404, and leaves the API as it was', async () => {
    const { base } = await serve({ playground: true }, (b) => b.tool('add', { handler: ({ a, b: c }) => a + c }));
    for (const from of ['/', '/playground']) {
      const response = await fetch(`${base}${from}`, { redirect: 'manual' });
      expect(response.status, from).toBe(302);
      expect(response.headers.get('location')).toBe('/playground/');
    }
    for (const missing of ['/playground/nope.js', '/playground/../package.json', '/playground/%2e%2e/package.json']) {
      const response = await fetch(`${base}${missing}`);
      expect(response.status, missing).toBe(404);
      expect((await response.json()).code).toBe('NOT_FOUND');
    }
    expect((await postJson(`${base}/playground/`, {})).status).toBe(404);
    const events = ndjsonLines(await (await postJson(`${base}/execute`, { code: "return await callTool('add', {a: 1, b: 2})" })).text());
    expect(events.at(-1).payload.result).toBe(3);
    expect((await (await fetch(`${base}/health`)).json()).status).toBe('ok');
  });

  it('serves the page without credentials, while its runs still need them', async () => {
    const { base } = await serve({
      playground: true,
      authentication: { type: 'bearer', validate: (token) => ({ valid: token === 'secret' }) },
    });
    expect((await fetch(`${base}/playground/app.js`)).status).toBe(200);
    expect((await postJson(`${base}/execute`, { code: 'return 1' })).status).toBe(401);
    const allowed = await postJson(`${base}/execute`, { code: 'return 1' }, { authorization: 'Bearer secret' });
    expect(ndjsonLines(await allowed.text()).at(-1).payload.result).toBe(1);
  });

  it('is off by default, and must be a boolean', async () => {
    const { broker, base } = await serve();
    expect(broker.playgroundPath).toBeUndefined();
    expect((await fetch(`${base}/playground/`)).status).toBe(404);
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect(() => new EnclaveBroker({ playground: 'yes' })).toThrow(new TypeError('playground must be a boolean'));
  });
});
