import { describe, it, expect } from 'vitest';
import { createBroker } from '../index.mjs';

describe('smoke', () => {
  it('runs a script with a tool call end to end', async () => {
    const broker = createBroker();
    broker.tool('add', { handler: ({ a, b }) => a + b });
    const types = [];
    const result = await broker.execute("return await callTool('add', {a: 1, b: 2})", {
      onEvent: (e) => types.push(e.type),
    });
    expect(result.success).toBe(true);
    expect(result.value).toBe(3);
    expect(types).toEqual(['session_init', 'tool_call', 'tool_progress', 'tool_progress', 'tool_result_applied', 'final']);
    await broker.dispose();
  });
});
