// The seed's broker events (S000, C38 in docs/compatibility.md) of EnclaveBroker and Broker: session:created,
// session:completed, session:error, tool:called and tool:completed, for sessions made by
// execute(), createSession() and the listen() server alike.
import { afterEach, describe, expect, it } from 'vitest';
import { EnclaveBroker, createBroker } from '../index.mjs';
import { gatedTool, hostCounts, waitFor } from './helpers/index.mjs';

const NAMES = ['session:created', 'session:completed', 'session:error', 'tool:called', 'tool:completed'];
const brokers = [];

function makeBroker(options) {
  const broker = new EnclaveBroker(options);
  brokers.push(broker);
  broker.tool('add', { handler: ({ a, b }) => a + b });
  broker.tool('fail', {
    handler: () => {
      throw Object.assign(new Error('no'), { code: 'NOPE' });
    },
  });
  return broker;
}

afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
});

// Every event as [name, sessionId, ...rest], and the session objects seen.
function record(broker) {
  const log = [];
  const sessions = new Set();
  for (const name of NAMES) {
    broker.on(name, (session, ...rest) => {
      sessions.add(session);
      log.push([name, session.sessionId, ...rest]);
    });
  }
  return { log, sessions };
}

// Runs one call of `add` and checks the events it gave, in order, before execute() resolved.
async function expectOneAddCall(broker, log) {
  const r = await broker.execute("return await callTool('add', {a: 1, b: 2})");
  const id = log[0][1];
  expect(log).toStrictEqual([
    ['session:created', id],
    ['tool:called', id, 'add', { a: 1, b: 2 }],
    ['tool:completed', id, 'add', 3],
    ['session:completed', id, r],
  ]);
}

describe('broker events', () => {
  it('execute(): created, tool called and completed, then completed, all before execute() resolves', async () => {
    const broker = makeBroker();
    const { log, sessions } = record(broker);
    await expectOneAddCall(broker, log);
    // The listener got the BrokerSession itself.
    expect([...sessions].map((s) => s.constructor.name)).toStrictEqual(['BrokerSession']);
  });

  it('a failed run is session:error with the result’s error, and a failed tool has no tool:completed', async () => {
    const broker = makeBroker();
    const { log } = record(broker);
    const r = await broker.execute("return await callTool('fail', {})");
    const id = log[0][1];
    expect(log).toStrictEqual([
      ['session:created', id],
      ['tool:called', id, 'fail', {}],
      ['session:error', id, { message: 'no', name: 'Error', code: 'NOPE' }],
    ]);
    expect(r.error).toStrictEqual(log[2][2]);
  });

  it('createSession(): created at once; a cancel before execute is session:error', async () => {
    const broker = makeBroker();
    const { log } = record(broker);
    const session = broker.createSession();
    expect(log).toStrictEqual([['session:created', session.sessionId]]);
    await session.cancel('changed my mind');
    await waitFor(() => log.length === 2, 2000, 'session:error');
    expect(log[1]).toStrictEqual([
      'session:error',
      session.sessionId,
      { message: 'changed my mind', name: 'Error', code: 'SESSION_CANCELLED' },
    ]);
  });

  it('sessions of the listen() server have the same events, with their BrokerSession', async () => {
    const broker = makeBroker();
    const { log, sessions } = record(broker);
    await broker.listen(0, '127.0.0.1');
    const response = await fetch(`http://127.0.0.1:${broker.port}/execute`, {
      method: 'POST',
      body: JSON.stringify({ code: "return await callTool('add', {a: 2, b: 2})" }),
    });
    const lines = (await response.text()).trim().split('\n').map((l) => JSON.parse(l));
    const id = lines[0].sessionId;
    await waitFor(() => log.length === 4, 2000, 'four events');
    expect(log).toStrictEqual([
      ['session:created', id],
      ['tool:called', id, 'add', { a: 2, b: 2 }],
      ['tool:completed', id, 'add', 4],
      ['session:completed', id, expect.objectContaining({ success: true, value: 4, finalState: 'completed' })],
    ]);
    expect([...sessions]).toStrictEqual([broker.getSession(id)]);
  });

  it('has EventEmitter’s listener methods, chainable, and once listeners fire once', async () => {
    const broker = makeBroker();
    const seen = [];
    const listener = (session) => seen.push(['on', session.sessionId]);
    expect(broker.on('session:created', listener)).toBe(broker);
    expect(broker.once('session:created', () => seen.push(['once']))).toBe(broker);
    expect(broker.listenerCount('session:created')).toBe(2);
    const first = broker.createSession();
    broker.createSession();
    expect(seen).toStrictEqual([['on', first.sessionId], ['once'], ['on', expect.any(String)]]);
    expect(broker.off('session:created', listener)).toBe(broker);
    broker.createSession();
    expect(seen).toHaveLength(3);
    broker.on('tool:called', () => {}).addListener('tool:called', () => {});
    expect(broker.removeAllListeners('tool:called').listenerCount('tool:called')).toBe(0);
  });

  it('a listener that throws changes nothing for the run or the other listeners', async () => {
    const broker = makeBroker();
    const after = [];
    for (const name of NAMES) {
      broker.on(name, () => {
        throw new Error(`listener of ${name}`);
      });
      broker.on(name, () => after.push(name));
    }
    const r = await broker.execute("return await callTool('add', {a: 5, b: 5})");
    expect(r.value).toBe(10);
    expect(after).toStrictEqual(['session:created', 'tool:called', 'tool:completed', 'session:completed']);
  });

  it('a listen() session given an onEvent listener delivers its events live, and is let go at final', async () => {
    const broker = makeBroker();
    const first = gatedTool(broker, 'first');
    const second = gatedTool(broker, 'second');
    const seen = [];
    let listening = false;
    let completed = false;
    broker.on('session:created', (session) => {
      session.onEvent((event) => seen.push([event.seq, event.type]));
      listening = true;
    });
    broker.on('session:completed', () => {
      completed = true;
    });
    await broker.listen(0, '127.0.0.1');
    const before = hostCounts().sessions;
    const response = fetch(`http://127.0.0.1:${broker.port}/execute`, {
      method: 'POST',
      body: JSON.stringify({ code: "await callTool('first', {}); console.log('a'); await callTool('second', {}); return 1" }),
    });
    await waitFor(() => listening, 5000, 'session:created');
    // Emitted after the listener was added, while the run then waits on `second`.
    first.open();
    await waitFor(() => seen.some(([, type]) => type === 'stdout'), 5000, 'live events');
    expect(seen.some(([, type]) => type === 'final')).toBe(false);
    second.open();
    const lines = (await (await response).text()).trim().split('\n').map((l) => JSON.parse(l));
    await waitFor(() => seen.at(-1)?.[1] === 'final', 5000, 'final');
    // Once each, in order, as the stream has them from the first one the listener saw.
    expect(seen).toStrictEqual(lines.filter((e) => e.seq >= seen[0][0]).map((e) => [e.seq, e.type]));
    expect(hostCounts().sessions).toBe(before);
    // The session's finish watcher is spent too, so nothing of it is left for the next test.
    await waitFor(() => completed, 5000, 'session:completed');
  });

  it('a session that never runs leaves no watcher behind once it is gone', async () => {
    const before = hostCounts().finishWatchers;
    const broker = makeBroker();
    broker.on('session:completed', () => {});
    broker.createSession();
    broker.createSession();
    expect(hostCounts().finishWatchers).toBe(before + 2);
    await broker.close();
    await waitFor(() => hostCounts().finishWatchers === before, 2000, 'watchers released');
  });

  it('sessions are observed only while a session listener exists, also on the server', async () => {
    const before = hostCounts().finishWatchers;
    const broker = makeBroker();
    broker.createSession();
    expect(hostCounts().finishWatchers).toBe(before);
    await broker.listen(0, '127.0.0.1');
    const run = async () => {
      const response = await fetch(`http://127.0.0.1:${broker.port}/execute`, { method: 'POST', body: JSON.stringify({ code: 'return 1' }) });
      return JSON.parse((await response.text()).split('\n')[0]).sessionId;
    };
    const created = [];
    const listener = (session) => created.push(session.sessionId);
    await run();
    broker.on('session:created', listener);
    const seen = await run();
    await waitFor(() => created.length === 1, 2000, 'session:created');
    broker.off('session:created', listener);
    broker.on('session:created', listener).removeAllListeners('session:created');
    await run();
    // Give a stray report time to arrive: none may.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(created).toStrictEqual([seen]);
  });

  // Issue 7: a createBroker() broker has them too (the original's Broker has none); emitting stays private.
  it('a createBroker() broker has the same events, and no public emit', async () => {
    const broker = createBroker();
    brokers.push({ close: () => broker.dispose() });
    broker.tool('add', { handler: ({ a, b }) => a + b });
    const { log } = record(broker);
    await expectOneAddCall(broker, log);
    expect(broker.listenerCount('session:created')).toBe(1);
    expect(broker.removeAllListeners().listenerCount('session:created')).toBe(0);
    expect(broker.emit).toBeUndefined();
  });
});
