// One table of tool-name pattern cases through every entry point that takes a pattern: a
// session's `allowedTools`, ToolRouter, AccessController and RateLimiter. The rule lives once,
// in the core (crates/core/src/tools/pattern.rs), so every entry point must answer alike.
import { describe, expect, it } from 'vitest';
import { AccessController, RateLimiter, ToolRouter, createBroker } from '../index.mjs';

// [pattern, name, matches]
const CASES = [
  ['admin:*', 'admin:delete', true],
  ['admin:*', 'admin:x:y', false],
  ['admin:*', 'admin:', true],
  ['admin:*', 'admin', false],
  ['user:*:read', 'user:profile:read', true],
  ['user:*:read', 'user:a:b:read', false],
  ['*', 'ping', true],
  ['*', 'a:b', false],
  ['users:**', 'users:a:b', true],
  ['users:**', 'users', false],
  ['**:read', 'user:profile:read', true],
  ['a***', 'a:b:c', true],
  ['a?c', 'abc', true],
  ['a?c', 'a:c', false],
  ['a?c', 'a😀c', true],
  ['a.b', 'axb', false],
  ['(x|y)', '(x|y)', true],
  ['[ab]', 'a', false],
  ['tool.*', 'tool.x', true],
  ['db:query', 'DB:QUERY', false],
];

const patterns = [...new Set(CASES.map(([pattern]) => pattern))];
const casesOf = (pattern) => CASES.filter(([p]) => p === pattern);

async function viaAllowedTools() {
  const broker = createBroker({ toolHandler: () => 'ran' });
  try {
    const answers = [];
    for (const pattern of patterns) {
      const names = casesOf(pattern).map(([, name]) => name);
      const code = `const out = [];
        for (const name of ${JSON.stringify(names)}) {
          try { await callTool(name, {}); out.push(true); } catch (e) { out.push(e.code === 'TOOL_NOT_ALLOWED' ? false : e.code); }
        }
        return out;`;
      const result = await broker.execute(code, { session: { allowedTools: [pattern], limits: { maxToolCalls: 100 } } });
      expect(result.success, JSON.stringify(result.error)).toBe(true);
      casesOf(pattern).forEach(([p, name], i) => answers.push([p, name, result.value[i]]));
    }
    return answers;
  } finally {
    await broker.dispose();
  }
}

async function viaToolRouter() {
  const answers = [];
  for (const [pattern, name] of CASES) {
    const router = new ToolRouter().register(pattern, { handler: () => 'routed' });
    expect(router.has(name)).toBe(
      await router.execute(name, {}).then(
        () => true,
        (e) => (e.code === 'UNKNOWN_TOOL' ? false : e.code),
      ),
    );
    answers.push([pattern, name, router.has(name)]);
  }
  return answers;
}

function viaAccessController() {
  return CASES.map(([pattern, name]) => {
    const access = new AccessController({ defaultPolicy: 'deny', rules: [{ pattern, allow: true }] });
    return [pattern, name, access.check(name, {})];
  });
}

function viaRateLimiter() {
  return CASES.map(([pattern, name]) => {
    // One call per window for matching tools: the second is refused exactly when the pattern matches.
    const limiter = new RateLimiter({ perTool: { [pattern]: { maxCalls: 1, windowMs: 60_000 } } });
    limiter.allow('s_1', name);
    return [pattern, name, !limiter.allow('s_1', name)];
  });
}

describe('tool-name patterns', () => {
  it('answer the same through allowedTools, ToolRouter, AccessController and RateLimiter', async () => {
    const expected = CASES;
    expect(await viaAllowedTools()).toEqual(expected);
    expect(await viaToolRouter()).toEqual(expected);
    expect(viaAccessController()).toEqual(expected);
    expect(viaRateLimiter()).toEqual(expected);
  });

  it('refuse an empty pattern everywhere', async () => {
    expect(() => new ToolRouter().register('', { handler: () => 1 })).toThrow(TypeError);
    expect(() => new AccessController({ rules: [{ pattern: '', allow: true }] })).toThrow(TypeError);
    expect(() => new RateLimiter({ perTool: { '': { maxCalls: 1, windowMs: 1000 } } })).toThrow(TypeError);
    const broker = createBroker();
    try {
      expect(() => broker.createSession({ allowedTools: [''] })).toThrow(
        new TypeError('allowedTools patterns must be non-empty strings'),
      );
    } finally {
      await broker.dispose();
    }
  });
});
