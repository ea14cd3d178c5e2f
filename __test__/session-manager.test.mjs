// SessionManager / createSessionManager (1.H in docs/compatibility.md).
import { describe, it, expect, afterEach } from 'vitest';
import { BrokerSession, SessionManager, ToolRegistry, createSessionManager } from '../index.mjs';
import { INFO_KEYS, ONE_TOOL_CALL_RUN, SESSION_ID_RE, collector, hangingTool, settleWithin, sleep, waitFor } from './helpers/index.mjs';

const MAX_SESSIONS = (n) =>
  `Maximum sessions reached (${n}). Wait for existing sessions to complete or increase maxSessions.`;

function makeRegistry() {
  const registry = new ToolRegistry();
  registry.register({ name: 'add', handler: ({ a, b }) => a + b });
  return registry;
}

const managers = [];
function makeManager(config, registry = makeRegistry()) {
  const manager = config === undefined ? createSessionManager(registry) : createSessionManager(registry, config);
  managers.push(manager);
  return manager;
}

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.dispose()));
});

describe('construction', () => {
  it('createSessionManager(registry, config?) is new SessionManager(registry, config?)', () => {
    const manager = makeManager();
    expect(manager).toBeInstanceOf(SessionManager);
    const direct = new SessionManager(makeRegistry(), { maxSessions: 1 });
    managers.push(direct);
    expect(direct.totalCount).toBe(0);
    expect(direct.activeCount).toBe(0);
  });

  it('requires a ToolRegistry and a config object; rejects bad numbers', () => {
    expect(() => createSessionManager(null)).toThrow(new TypeError('SessionManager needs a ToolRegistry'));
    expect(() => new SessionManager(makeRegistry(), 5)).toThrow(new TypeError('SessionManager config must be an object'));
    expect(() => createSessionManager(makeRegistry(), { maxSessions: -1 })).toThrow(TypeError);
    expect(() => createSessionManager(makeRegistry(), { maxSessions: 'x' })).toThrow(
      'maxSessions must be a non-negative number, got "x"',
    );
    expect(() => createSessionManager(makeRegistry(), { cleanupIntervalMs: 0 })).toThrow(TypeError);
    expect(() =>
      createSessionManager(makeRegistry(), { defaultSessionConfig: { limits: { maxToolCalls: -1 } } }),
    ).toThrow(new TypeError('Invalid session limit "maxToolCalls": expected a non-negative number, got -1'));
  });

  it('defaults maxSessions to 100', () => {
    const manager = makeManager();
    for (let i = 0; i < 100; i++) manager.create();
    expect(() => manager.create()).toThrow(new Error(MAX_SESSIONS(100)));
    expect(manager.totalCount).toBe(100);
  });
});

describe('create / get / has / list', () => {
  it('create is sync and returns {session, sessionId}', () => {
    const manager = makeManager();
    const created = manager.create();
    expect(Object.keys(created)).toEqual(['session', 'sessionId']);
    expect(created.session).toBeInstanceOf(BrokerSession);
    expect(created.sessionId).toBe(created.session.sessionId);
    expect(created.sessionId).toMatch(SESSION_ID_RE);
    expect(manager.get(created.sessionId)).toBe(created.session);
    expect(manager.has(created.sessionId)).toBe(true);
    expect(manager.has('nope')).toBe(false);
    expect(manager.get('nope')).toBeUndefined();
  });

  it('merges defaultSessionConfig shallowly (Q1)', () => {
    const manager = makeManager({ defaultSessionConfig: { limits: { sessionTtlMs: 5000 } } });
    const inherits = manager.create().session;
    expect(inherits.expiresAt - inherits.createdAt).toBe(5000);
    const replaces = manager.create({ limits: { maxToolCalls: 3 } }).session;
    expect(replaces.expiresAt - replaces.createdAt).toBe(60000);
    const undefinedLimits = manager.create({ limits: undefined }).session;
    expect(undefinedLimits.expiresAt - undefinedLimits.createdAt).toBe(60000);
  });

  it('maxSessions error; a duplicate sessionId replaces the entry (Q7)', () => {
    const manager = makeManager({ maxSessions: 2 });
    const first = manager.create({ sessionId: 'same' }).session;
    const second = manager.create({ sessionId: 'same' }).session;
    expect(manager.get('same')).toBe(second);
    expect(manager.totalCount).toBe(1);
    expect(first.state).toBe('starting');
    manager.create();
    expect(() => manager.create()).toThrow(new Error(MAX_SESSIONS(2)));
  });

  it('a full manager makes room by sweeping finished sessions, not running ones', async () => {
    const manager = makeManager({ maxSessions: 2 });
    const done = manager.create().session;
    const waiting = manager.create().session;
    await done.execute('return 1');
    expect(done.state).toBe('completed');
    const fresh = manager.create().session;
    expect(manager.list().map((i) => i.sessionId)).toEqual([waiting.sessionId, fresh.sessionId]);
    expect(manager.get(done.sessionId)).toBeUndefined();
    expect(() => manager.create()).toThrow(new Error(MAX_SESSIONS(2)));
    expect(waiting.state).toBe('starting');
  });

  it('list / listActive give SessionInfo; activeCount / totalCount', async () => {
    const manager = makeManager();
    const a = manager.create().session;
    const b = manager.create().session;
    await b.execute('return 1');
    expect(manager.list().map((i) => Object.keys(i))).toEqual([INFO_KEYS, INFO_KEYS]);
    expect(manager.list().map((i) => [i.sessionId, i.state])).toEqual([
      [a.sessionId, 'starting'],
      [b.sessionId, 'completed'],
    ]);
    expect(manager.listActive().map((i) => i.sessionId)).toEqual([a.sessionId]);
    expect(manager.activeCount).toBe(1);
    expect(manager.totalCount).toBe(2);
  });

  it('rejects a non-object session config', () => {
    const manager = makeManager();
    expect(() => manager.create('x')).toThrow(new TypeError('Session config must be an object'));
    expect(() => manager.create([1])).toThrow(TypeError);
    expect(manager.totalCount).toBe(0);
    expect(manager.create(null).session.state).toBe('starting');
  });
});

describe('terminate / destroy / cleanup', () => {
  it('terminate cancels with "Terminated by session manager", disposes, removes', async () => {
    const registry = makeRegistry();
    const hang = hangingTool();
    registry.register({ name: 'hang', ...hang.def });
    const manager = makeManager(undefined, registry);
    const { session, sessionId } = manager.create();
    const pending = session.execute("return await callTool('hang', {})");
    await waitFor(() => hang.calls.length === 1);
    expect(await manager.terminate(sessionId)).toBe(true);
    expect(manager.has(sessionId)).toBe(false);
    expect(await manager.terminate(sessionId)).toBe(false);
    const r = await settleWithin(pending, 2000);
    expect(r).toMatchObject({ error: { code: 'SESSION_CANCELLED', message: 'Session was cancelled' } });
    expect(hang.calls[0].aborted).toBe(true);

    const idle = manager.create().session;
    await manager.terminate(idle.sessionId, 'custom');
    expect(idle.getEvents()[0].payload.message).toBe('custom');
  });

  it('destroy is an alias of terminate (seed API)', async () => {
    const manager = makeManager();
    const { session, sessionId } = manager.create();
    expect(await manager.destroy(sessionId)).toBe(true);
    expect(session.state).toBe('cancelled');
    expect(manager.totalCount).toBe(0);
  });

  it('cleanup removes expired or terminal sessions and returns the count', async () => {
    const manager = makeManager();
    manager.create();
    await manager.create().session.execute('return 1');
    manager.create({ limits: { sessionTtlMs: 1 } });
    await sleep(5);
    expect(manager.cleanup()).toBe(2);
    expect(manager.totalCount).toBe(1);
    expect(manager.cleanup()).toBe(0);
  });
});

describe('executeAndWait', () => {
  it('creates, executes, streams to the handler, then disposes and removes', async () => {
    const manager = makeManager();
    const { events, onEvent } = collector();
    const r = await manager.executeAndWait("return await callTool('add', {a: 2, b: 3})", undefined, onEvent);
    expect(r.value).toBe(5);
    expect(events.map((e) => e.type)).toEqual(ONE_TOOL_CALL_RUN);
    expect(manager.totalCount).toBe(0);
    const limited = await manager.executeAndWait(
      "await callTool('add', {a: 1, b: 1}); return await callTool('add', {a: 1, b: 1})",
      { limits: { maxToolCalls: 1 } },
    );
    expect(limited.error.code).toBe('MAX_TOOL_CALLS_EXCEEDED');
    expect(manager.totalCount).toBe(0);
  });

  it('rejects bad code or handler before creating a session', async () => {
    const manager = makeManager();
    await expect(manager.executeAndWait(5)).rejects.toThrow(TypeError);
    await expect(manager.executeAndWait('1', undefined, 'nope')).rejects.toThrow(
      new TypeError('onEvent handler must be a function'),
    );
    expect(manager.totalCount).toBe(0);
  });
});

describe('dispose', () => {
  it('cancels every session with "Session manager disposed" and refuses new ones', async () => {
    const manager = makeManager();
    const { session } = manager.create();
    const p = manager.dispose();
    expect(p).toBeInstanceOf(Promise);
    await p;
    await manager.dispose();
    expect(session.state).toBe('cancelled');
    expect(session.getEvents()[0].payload.message).toBe('Session manager disposed');
    expect(manager.totalCount).toBe(0);
    expect(() => manager.create()).toThrow(new Error('Session manager is disposed'));
    await expect(manager.executeAndWait('return 1')).rejects.toThrow('Session manager is disposed');
  });
});

describe('the seed API (S001, contract C26)', () => {
  it('new SessionManager({maxConcurrentSessions, sessionTimeout, cleanupInterval}) maps onto the original’s config', async () => {
    const manager = new SessionManager({ maxConcurrentSessions: 1, sessionTimeout: 5000, cleanupInterval: 10000 });
    managers.push(manager);
    const { session } = manager.create();
    expect(session.expiresAt - session.createdAt).toBe(5000);
    expect(() => manager.create()).toThrow(new Error(MAX_SESSIONS(1)));
    // Its registry is empty: a tool call fails like any unknown tool.
    expect((await session.execute("return await callTool('add', {a: 1, b: 2})")).error.code).toBe('UNKNOWN_TOOL');
  });

  it('the seed form keeps the original’s defaults for keys it does not give, and refuses unknown keys', () => {
    const manager = new SessionManager({});
    managers.push(manager);
    const { session } = manager.create();
    expect(session.expiresAt - session.createdAt).toBe(60000);
    expect(() => new SessionManager({ maxSessions: 5 })).toThrow(
      new TypeError(
        'SessionManager needs a ToolRegistry (or seed options maxConcurrentSessions, sessionTimeout, cleanupInterval), got key "maxSessions"',
      ),
    );
    expect(() => new SessionManager({ maxConcurrentSessions: -1 })).toThrow('maxSessions must be a non-negative number, got -1');
  });

  it('create({userId, metadata}) keeps them: in list() of those sessions only, and list({userId}) filters', () => {
    const manager = makeManager();
    const alice = manager.create({ userId: 'alice', metadata: { source: 'api' } });
    const bob = manager.create({ userId: 'bob' });
    const plain = manager.create();
    // `id` is the seed's name of sessionId, on the result and on the session.
    expect(manager.get(alice.id)).toBe(alice.session);
    expect(alice.session.id).toBe(alice.sessionId);
    expect(Object.keys(alice)).toStrictEqual(['session', 'sessionId']);
    const infos = manager.list();
    expect(infos.map((i) => [i.sessionId, i.userId, i.metadata])).toStrictEqual([
      [alice.sessionId, 'alice', { source: 'api' }],
      [bob.sessionId, 'bob', undefined],
      [plain.sessionId, undefined, undefined],
    ]);
    expect(Object.keys(infos[2])).toStrictEqual(INFO_KEYS);
    expect(manager.list({ userId: 'alice' }).map((i) => i.sessionId)).toStrictEqual([alice.sessionId]);
    expect(manager.listActive({ userId: 'carol' })).toStrictEqual([]);
    expect(() => manager.create({ userId: 7 })).toThrow(new TypeError('userId must be a string, got 7'));
    expect(() => manager.create({ metadata: 'x' })).toThrow(new TypeError('metadata must be an object'));
    expect(() => manager.list('alice')).toThrow(new TypeError('list filter must be an object'));
    expect(manager.totalCount).toBe(3);
  });

  it('forgets a session’s userId once the session is gone', async () => {
    const manager = makeManager();
    const { sessionId } = manager.create({ userId: 'alice' });
    await manager.destroy(sessionId);
    expect(manager.list({ userId: 'alice' })).toStrictEqual([]);
  });
});
