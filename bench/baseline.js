// The baseline: what the original @enclave-vm/broker pays per execution, rebuilt on
// node:vm because the original package is not installed here. Every execution creates
// two fresh contexts (never reused): a parent context holding the tool bridge, and an
// inner context where the script is compiled and run. A tool call goes
//   script's callTool (inner realm) -> bridge (parent realm) -> async host handler (awaited)
// and back, with arguments and results JSON-copied at each realm boundary; the return
// value is JSON-copied out of the inner context.
//
// It is a lower bound for the original: the original also parses and rewrites the script
// (AST validation and transformation) and sanitizes values with a tree walk, none of
// which is done here.
'use strict';

const vm = require('node:vm');

const CONTEXT_OPTIONS = { codeGeneration: { strings: false, wasm: false } };

// Runs in the parent context: the bridge between the inner context and the host.
const PARENT_BOOTSTRAP = `(function (hostCallTool, maxToolCalls) {
  'use strict';
  let calls = 0;
  return async function bridge(name, argsJson) {
    if (typeof name !== 'string') throw new TypeError('Tool name must be a string');
    if (typeof argsJson !== 'string') throw new TypeError('Tool arguments must be JSON');
    if (++calls > maxToolCalls) throw new Error('Maximum tool call limit exceeded (' + maxToolCalls + ')');
    return await hostCallTool(name, argsJson);
  };
})`;

// Runs in the inner context: the script's globals, wired to the parent's bridge.
const INNER_BOOTSTRAP = `(function (bridge, write) {
  'use strict';
  const parse = JSON.parse;
  const stringify = JSON.stringify;
  async function callTool(name, args) {
    const json = await bridge(String(name), stringify(args === undefined ? null : args));
    return json === undefined ? undefined : parse(json);
  }
  const log = (...parts) => write(parts.map((p) => (typeof p === 'string' ? p : stringify(p))).join(' '));
  return { callTool, console: { log, info: log, warn: log, error: log }, serialize: (v) => stringify(v) };
})`;

class VmBaselineBroker {
  #tools = new Map();
  #executions = 0;

  tool(name, { handler }) {
    this.#tools.set(name, handler);
    return this;
  }

  async execute(code, { timeoutMs = 30000, maxToolCalls = 50 } = {}) {
    const started = performance.now();
    const executionId = ++this.#executions;
    let toolCallCount = 0;
    const stdout = [];
    const hostCallTool = async (name, argsJson) => {
      const handler = this.#tools.get(name);
      if (handler === undefined) throw new Error(`Unknown tool: ${name}`);
      toolCallCount++;
      const args = JSON.parse(argsJson);
      const value = await handler(args, { executionId, callId: `c_${toolCallCount}` });
      return value === undefined ? undefined : JSON.stringify(value);
    };
    try {
      const parent = vm.createContext({}, CONTEXT_OPTIONS);
      const bridge = vm.runInContext(PARENT_BOOTSTRAP, parent)(hostCallTool, maxToolCalls);
      const inner = vm.createContext({}, CONTEXT_OPTIONS);
      const globals = vm.runInContext(INNER_BOOTSTRAP, inner)(bridge, (line) => stdout.push(line));
      inner.callTool = globals.callTool;
      inner.console = globals.console;
      const script = new vm.Script(`(async () => {\n${code}\n})()`, { filename: 'agentscript.js' });
      const value = await script.runInContext(inner, { timeout: timeoutMs });
      const json = globals.serialize(value);
      return {
        success: true,
        value: json === undefined ? undefined : JSON.parse(json),
        stats: { duration: performance.now() - started, toolCallCount },
      };
    } catch (error) {
      return {
        success: false,
        error: { name: String(error?.name ?? 'Error'), message: String(error?.message ?? error), code: 'EXECUTION_ERROR' },
        stats: { duration: performance.now() - started, toolCallCount },
      };
    }
  }

  async dispose() {
    this.#tools.clear();
  }
}

module.exports = { VmBaselineBroker };
