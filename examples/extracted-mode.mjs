// Seed 003's extracted-mode example as written, with the worker imported from this package:
//   node examples/extracted-mode.mjs      (needs port 3001 free)
// The broker keeps the tool; the script runs on the worker and calls back over WebSocket.
import { createBroker, createRuntimeWorker } from 'enclave-broker-rs';

// Broker
const broker = createBroker({
  mode: 'extracted',
  runtimeUrl: 'ws://localhost:3001',
});

// Runtime Worker
const worker = createRuntimeWorker({ port: 3001 });
await worker.start();

broker.tool('getCurrentTime', {
  description: 'Get the current time',
  handler: async () => new Date().toISOString(),
});
for await (const event of broker.execute("const time = await callTool('getCurrentTime', {}); console.log('Current time:', time); return time;")) {
  console.log(event.type, JSON.stringify(event.payload));
}
await broker.dispose();
await worker.stop();
