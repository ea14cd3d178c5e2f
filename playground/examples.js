// The example scripts of the picker. They call the tools that `npm start` registers
// (examples/playground.js): users:list, greeting:compose, clock:sleep (slow),
// payments:charge (always fails) and catalog:list (a large list).

export const EXAMPLES = [
  {
    id: 'two-tools',
    title: 'Two tool calls and a console.log',
    note: 'Each tool call is one row: the call, then its result applied, with the time between.',
    code: `const team = await callTool('users:list', { team: 'engines' });
console.log('found', team.length, 'users');
const message = await callTool('greeting:compose', { names: team.map((u) => u.name) });
return { message, count: team.length };
`,
  },
  {
    id: 'slow',
    title: 'A slow tool (try "Drop connection")',
    note: 'Eight calls of 600 ms. Drop the connection while it runs: the page reconnects and the broker replays from the last seq it saw.',
    code: `for (let i = 1; i <= 8; i++) {
  await callTool('clock:sleep', { ms: 600 });
  console.log('tick', i);
}
return 'slept 8 times';
`,
  },
  {
    id: 'failing',
    title: 'A tool that fails',
    note: 'A tool error reaches the script as an exception with its code; an uncaught one ends the run with that code.',
    code: `try {
  await callTool('payments:charge', { amount: 12.5 });
} catch (error) {
  console.log('first try:', error.code, error.message);
}
await callTool('payments:charge', { amount: 99, currency: 'USD' });
return 'not reached';
`,
  },
  {
    id: 'large-list',
    title: 'A large list from a tool',
    note: 'catalog:list returns 10,000 items; they cross into the isolate as JSON and the script reduces them.',
    code: `const items = await callTool('catalog:list', { count: 10000 });
const inStock = items.filter((item) => item.inStock);
const total = inStock.reduce((sum, item) => sum + item.price, 0);
console.log(items.length, 'items,', inStock.length, 'in stock');
return { cheapest: inStock.toSorted((a, b) => a.price - b.price).slice(0, 3), total: Math.round(total) };
`,
  },
  {
    id: 'parallel',
    title: 'Calls in parallel',
    note: 'Three slow calls at once: their rows overlap and the run takes about as long as the slowest.',
    code: `const started = Date.now();
const results = await Promise.all([300, 600, 900].map((ms) => callTool('clock:sleep', { ms })));
return { results, tookMs: Date.now() - started };
`,
  },
  {
    id: 'spin',
    title: 'A script that never ends (Cancel it)',
    note: 'Cancel stops it at once (SESSION_CANCELLED); otherwise the timeout does.',
    code: `let n = 0;
while (true) {
  n++;
}
`,
  },
  {
    id: 'too-many-calls',
    title: 'More tool calls than maxToolCalls',
    note: 'Set "Max tool calls" and watch the call after the last allowed one fail.',
    code: `for (let i = 0; i < 100; i++) {
  await callTool('users:list', {});
}
`,
  },
  {
    id: 'memory',
    title: 'Allocate past the memory limit',
    note: 'The V8 heap limit stops the script with MEMORY_LIMIT_EXCEEDED.',
    code: `const chunks = [];
while (true) {
  chunks.push(new Array(1e6).fill(chunks.length));
}
`,
  },
  {
    id: 'sandbox',
    title: 'What the sandbox refuses',
    note: 'No eval, no Function constructor, no process, no require: the script sees only its own realm.',
    code: `const tries = {
  eval: () => eval('1 + 1'),
  Function: () => new Function('return 1')(),
  process: () => process.env,
  require: () => require('fs'),
};
for (const [name, attempt] of Object.entries(tries)) {
  try {
    attempt();
    console.log(name, 'worked?!');
  } catch (error) {
    console.log(name, '→', error.name + ':', error.message);
  }
}
`,
  },
];
