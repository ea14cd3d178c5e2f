// Child process for attacks that may kill the host: reads `{code, config}` on stdin, runs
// the code on a fresh broker, then `return 1 + 1` on the same broker, and prints one
// `REPORT <json>` line. Nothing else is written to stdout by this process, so any other
// stdout output came from the sandbox.
import { createBroker } from '../../index.mjs';

let input = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) input += chunk;
const { code, config } = JSON.parse(input);

const broker = createBroker(config);
broker.tool('echo', { handler: async (args) => args });
let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 10);
const started = Date.now();
const result = await broker.execute(code);
const elapsedMs = Date.now() - started;
clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage().rss);
const after = await broker.execute('return 1 + 1');
const report = {
  outcome: result.success ? { success: true, value: result.value } : { success: false, error: result.error },
  after: after.value,
  elapsedMs,
  peakRssMiB: Math.round(peakRss / (1024 * 1024)),
};
process.stdout.write(`REPORT ${JSON.stringify(report)}\n`);
await broker.dispose();
