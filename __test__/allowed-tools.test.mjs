// The seed API's `allowedTools` session option (C28 in docs/compatibility.md): glob patterns of the tools a
// session may call. Any other call fails inside the script like a tool error, and its
// handler never runs.
import { describe, expect, it } from 'vitest';
import { createSessionManager, createToolRegistry } from '../index.mjs';
import { TOOL_CALL_EVENTS, brokersDisposedAfterEach, collector } from './helpers/index.mjs';

const newBroker = brokersDisposedAfterEach();
function makeBroker() {
  const calls = [];
  const broker = newBroker()
    .tool('users:list', { handler: () => ['ada'] })
    .tool('users:get', { handler: ({ id }) => ({ id }) })
    .tool('admin:drop', {
      handler: () => {
        calls.push('admin:drop');
        return 'dropped';
      },
    });
  return { broker, calls };
}

const TRY_BOTH = `
  const users = await callTool('users:list', {});
  let refused;
  try { await callTool('admin:drop', {}); } catch (e) { refused = [e.code, e.message]; }
  return [users, refused];`;
const REFUSED = ['TOOL_NOT_ALLOWED', 'Tool "admin:drop" is not allowed in this session'];
const outcome = (r) => (r.success ? { value: r.value } : { code: r.error.code });

describe('allowedTools', () => {
  it('lets matching tools run and fails the others inside the script, without calling them', async () => {
    const { broker, calls } = makeBroker();
    const session = broker.createSession({ allowedTools: ['users:*'] });
    const seen = collector();
    session.onEvent(seen.onEvent);
    const r = await session.execute(TRY_BOTH);
    expect(r.value).toStrictEqual([['ada'], REFUSED]);
    expect(calls).toStrictEqual([]);
    // The refused call looks like any failed call in the stream, and it counts.
    expect(seen.types()).toStrictEqual(['session_init', ...TOOL_CALL_EVENTS, ...TOOL_CALL_EVENTS, 'final']);
    expect(seen.events[5].payload.toolName).toBe('admin:drop');
    expect(r.stats.toolCallCount).toBe(2);
  });

  it('an uncaught refusal fails the run with TOOL_NOT_ALLOWED', async () => {
    const { broker } = makeBroker();
    const r = await broker.execute("return await callTool('admin:drop', {});", { session: { allowedTools: ['users:list'] } });
    expect(r).toMatchObject({ success: false, error: { code: 'TOOL_NOT_ALLOWED', message: REFUSED[1] }, finalState: 'failed' });
  });

  it('reads * as one :-segment and ** as any; an empty list allows nothing', async () => {
    const { broker } = makeBroker();
    broker.tool('users:admin:drop', { handler: () => 'gone' });
    const run = async (name, allowedTools) =>
      outcome(await broker.execute(`return await callTool('${name}', {id: 1});`, { session: { allowedTools } }));
    expect(await run('users:get', ['users:*'])).toStrictEqual({ value: { id: 1 } });
    expect(await run('users:admin:drop', ['users:*'])).toStrictEqual({ code: 'TOOL_NOT_ALLOWED' });
    expect(await run('users:admin:drop', ['users:**'])).toStrictEqual({ value: 'gone' });
    expect(await run('admin:drop', ['users:get', 'admin:?rop'])).toStrictEqual({ value: 'dropped' });
    // Regex metacharacters are literal.
    expect(await run('users:get', ['users.get'])).toStrictEqual({ code: 'TOOL_NOT_ALLOWED' });
    expect(await run('users:list', [])).toStrictEqual({ code: 'TOOL_NOT_ALLOWED' });
  });

  it('without allowedTools every tool may be called, as in the original', async () => {
    const { broker, calls } = makeBroker();
    expect((await broker.execute(TRY_BOTH)).value).toStrictEqual([['ada'], null]);
    expect(calls).toStrictEqual(['admin:drop']);
  });

  it('works on SessionManager.create too', async () => {
    const registry = createToolRegistry();
    registry.register({ name: 'a', handler: () => 1 });
    registry.register({ name: 'b', handler: () => 2 });
    const manager = createSessionManager(registry);
    const { session } = manager.create({ allowedTools: ['a'] });
    const r = await session.execute("let e; try { await callTool('b', {}); } catch (x) { e = x.code; } return [await callTool('a', {}), e];");
    expect(r.value).toStrictEqual([1, 'TOOL_NOT_ALLOWED']);
    await manager.dispose();
  });

  it('bad patterns are refused before any session exists', () => {
    const { broker } = makeBroker();
    expect(() => broker.createSession({ allowedTools: 'users:*' })).toThrow(new TypeError('allowedTools must be an array of tool name patterns'));
    expect(() => broker.createSession({ allowedTools: ['users:', 7] })).toThrow(TypeError);
    expect(() => broker.createSession({ allowedTools: ['users:*', ''] })).toThrow('allowedTools patterns must be non-empty strings');
    expect(broker.stats().totalSessions).toBe(0);
  });
});
