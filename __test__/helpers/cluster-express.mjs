// A broker of a cluster test without its own server: createBroker({ redis }) with the
// original's SessionHandler on Express, in its own Node process. Requests act as the user in
// `X-User`. It prints `{"port"}` once it listens (or `{"error"}`) and closes on SIGTERM.
import express from 'express';
import { createBroker, createSessionHandler, registerExpressRoutes } from '../../index.mjs';

const options = JSON.parse(process.argv[2]);
const broker = createBroker({
  redis: options.redis,
  limits: { heartbeatIntervalMs: 0 },
  tools: { echo: (args) => args },
  externalTools: ['ask'],
});
const app = express();
app.use(express.json());
registerExpressRoutes(app, createSessionHandler({ broker, resolvePrincipal: (req) => req.headers['x-user'] }));
try {
  await broker.connect();
  const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
  process.on('SIGTERM', async () => {
    server.close();
    await broker.dispose();
    process.exit(0);
  });
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: error.message })}\n`);
  process.exit(1);
}
