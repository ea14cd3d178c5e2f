// One table of event-filter cases (types, content, regexes, globs, and the configs the
// original accepts oddly) through every entry point that takes a filter: the JavaScript
// EventFilter, execute({filter}), the listen() server's POST /sessions, POST /execute and
// stream route, and the Express SessionHandler's POST /sessions and stream route. The rule
// lives once, in the core (crates/core/src/filter/), so every entry point must answer alike.
import { once } from 'node:events';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EnclaveBroker, EventFilter, createBroker, createSessionHandler, registerExpressRoutes } from '../index.mjs';
import { ndjsonLines } from './helpers/index.mjs';

const CODE = `console.log('alpha');
  const user = await callTool('users:get', { id: 7, tags: ['Admin', 'ops'] });
  console.log('Beta/gamma');
  console.log('.hidden');
  return user.name;`;
// The run's events by seq: 1 session_init, 2 stdout 'alpha\n', 3 tool_call, 4-5 tool_progress,
// 6 tool_result_applied, 7 stdout 'Beta/gamma\n', 8 stdout '.hidden\n', 9 final.
const ALL = [1, 2, 3, 4, 5, 6, 7, 8, 9];

const chunk = (type, pattern, extra = {}) => ({ type, pattern, field: 'payload.chunk', ...extra });
const only = (patterns, extra = {}) => ({ mode: 'include', rules: [{ content: { patterns } }], ...extra });

// [what, EventFilterConfig, seqs sent]
const CASES = [
  ['include a type', { mode: 'include', rules: [{ types: { types: ['tool_call'] } }] }, [1, 3, 9]],
  ['exclude types', { mode: 'exclude', rules: [{ types: { types: ['tool_progress', 'stdout'] } }] }, [1, 3, 6, 9]],
  ['alwaysAllow replaced', { mode: 'include', alwaysAllow: [], rules: [{ types: { types: ['stdout'] } }] }, [2, 7, 8]],
  ['exact field', only([{ type: 'exact', pattern: 'users:get', field: 'payload.toolName' }], { alwaysAllow: [] }), [3]],
  ['array element', only([{ type: 'exact', pattern: 'ops', field: 'payload.args.tags.1' }], { alwaysAllow: [] }), [3]],
  [
    'types and content ANDed',
    { mode: 'include', rules: [{ types: { types: ['tool_call'] }, content: { patterns: [{ type: 'prefix', pattern: 'users', field: 'payload.toolName' }] } }] },
    [1, 3, 9],
  ],
  [
    "match: 'all'",
    {
      mode: 'include',
      alwaysAllow: [],
      rules: [{ content: { match: 'all', patterns: [{ type: 'prefix', pattern: 'users', field: 'payload.toolName' }, { type: 'exact', pattern: '7', field: 'payload.args.id' }] } }],
    },
    [3],
  ],
  ['regex, caseInsensitive', only([chunk('regex', '^beta', { caseInsensitive: true })]), [1, 7, 9]],
  ['regex lookbehind', only([chunk('regex', '(?<=Beta/)gam')]), [1, 7, 9]],
  ['regex backreference', only([chunk('regex', '^(a)lph\\1')]), [1, 2, 9]],
  ['flagged regex that needs backtracking', only([chunk('regex', '^(a+)+\\1$')], { alwaysAllow: [] }), []],
  ['invalid regex', only([chunk('regex', 'a(')]), [1, 9]],
  ['glob braces, * stops at /', only([chunk('glob', '{alpha,Beta}*')]), [1, 2, 9]],
  ['glob across a /', only([chunk('glob', 'Beta/*')]), [1, 7, 9]],
  ['glob * skips a leading dot', only([chunk('glob', '*')]), [1, 2, 9]],
  ['glob .* takes it', only([chunk('glob', '.*')]), [1, 8, 9]],
  ['glob extglob, nocase', only([chunk('glob', '+(AL|PH)A?', { caseInsensitive: true })]), [1, 2, 9]],
  ['glob negated', { mode: 'exclude', rules: [{ content: { patterns: [chunk('glob', '!alpha?')] } }] }, [1, 2, 3, 4, 5, 6, 9]],
  ['glob over the whole payload', only([{ type: 'glob', pattern: '*"toolName":"users:*"*' }]), [1, 3, 9]],
  ['any other mode excludes', { mode: 'sideways', rules: [{ types: { types: ['stdout'] } }] }, [1, 3, 4, 5, 6, 9]],
  ['unknown types never match', { mode: 'include', alwaysAllow: [], rules: [{ types: { types: ['nonsense', 'final'] } }] }, [9]],
  ['an empty rule matches everything', { mode: 'include', alwaysAllow: [], rules: [{}] }, ALL],
];

// [seed filter of execute() and POST /execute, seqs sent]
const TYPE_LISTS = [
  [{ types: ['stdout'] }, [1, 2, 7, 8, 9]],
  [{ blockedTypes: ['tool_progress', 'stdout'] }, [1, 3, 6, 9]],
  [{ types: ['stdout', 'tool_call'], blockedTypes: ['stdout'] }, [1, 3, 9]],
];

const seqs = (events) => events.map((e) => e.seq);
const tool = { handler: async ({ id }) => ({ id, name: 'Ada' }) };

let broker;
let server;
let serverBase;
let app;
let expressBase;
let reference;

beforeAll(async () => {
  broker = createBroker({ limits: { heartbeatIntervalMs: 0 } });
  broker.tool('users:get', tool);
  reference = [];
  await broker.execute(CODE, { onEvent: (e) => reference.push(e) });
  expect(reference.map((e) => e.type)).toEqual([
    'session_init',
    'stdout',
    'tool_call',
    'tool_progress',
    'tool_progress',
    'tool_result_applied',
    'stdout',
    'stdout',
    'final',
  ]);

  server = new EnclaveBroker({ limits: { heartbeatIntervalMs: 0 } });
  server.tool('users:get', tool);
  await server.listen(0, '127.0.0.1');
  serverBase = `http://127.0.0.1:${server.port}`;

  const handlerBroker = createBroker();
  handlerBroker.tool('users:get', tool);
  const expressApp = express();
  expressApp.use(express.json());
  registerExpressRoutes(expressApp, createSessionHandler({ broker: handlerBroker }));
  app = { server: expressApp.listen(0, '127.0.0.1'), broker: handlerBroker };
  await once(app.server, 'listening');
  expressBase = `http://127.0.0.1:${app.server.address().port}`;
});

afterAll(async () => {
  app?.server.closeAllConnections();
  await new Promise((resolve) => (app ? app.server.close(resolve) : resolve()));
  await app?.broker.dispose();
  await server?.close({ timeout: 0 });
  await broker?.dispose();
});

async function post(base, path, body) {
  const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(200);
  return ndjsonLines(await res.text());
}

async function replay(base, filter) {
  const events = await post(base, '/sessions', { code: CODE });
  expect(events.at(-1).type).toBe('final');
  const res = await fetch(`${base}/sessions/${events[0].sessionId}/stream?filter=${encodeURIComponent(JSON.stringify(filter))}`);
  expect(res.status).toBe(200);
  return ndjsonLines(await res.text());
}

async function viaExecute(filter) {
  const events = [];
  for await (const event of broker.execute(CODE, { filter })) events.push(event);
  return events;
}

describe('event filters', () => {
  it.each(CASES)('%s: the same answer through every entry point', async (_what, config, expected) => {
    vi.spyOn(console, 'warn').mockImplementation(() => {});
    vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const answers = {
        EventFilter: seqs(new EventFilter({ config }).filter(reference)),
        'execute({filter})': seqs(await viaExecute(config)),
        'listen(): POST /sessions': seqs(await post(serverBase, '/sessions', { code: CODE, filter: config })),
        'listen(): stream route': seqs(await replay(serverBase, config)),
        'SessionHandler: POST /sessions': seqs(await post(expressBase, '/sessions', { code: CODE, filter: config })),
        'SessionHandler: stream route': seqs(await replay(expressBase, config)),
      };
      for (const [where, answer] of Object.entries(answers)) expect([where, answer]).toEqual([where, expected]);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it.each(TYPE_LISTS)('%j: the same answer through execute() and POST /execute', async (filter, expected) => {
    expect(seqs(await viaExecute(filter))).toEqual(expected);
    expect(seqs(await post(serverBase, '/execute', { code: CODE, filter }))).toEqual(expected);
  });
});
