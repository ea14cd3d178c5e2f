// One broker of a cluster test: its own Node process running `EnclaveBroker.listen(0)` on
// the Redis given in the JSON argument, printing `{"port"}` once it listens (or `{"error"}`),
// and closing on SIGTERM. Its tools: `echo` (answers at once) and `ask` (run by the client:
// answered through POST /sessions/:id/tool-result). Every request authenticates with
// `Authorization: Bearer <user>`: the token is the user id.
import { EnclaveBroker } from '../../index.mjs';

const options = JSON.parse(process.argv[2]);
const broker = new EnclaveBroker({
  redis: options.redis,
  cluster: options.cluster,
  limits: { heartbeatIntervalMs: 0, ...options.limits },
  tools: { echo: (args) => args },
  externalTools: ['ask'],
  authentication: { type: 'bearer', validate: (token) => ({ valid: true, userId: token }) },
  rateLimiting: options.rateLimiting,
});
try {
  await broker.listen(0, '127.0.0.1');
  process.stdout.write(`${JSON.stringify({ port: broker.port })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: error.message })}\n`);
  process.exit(1);
}
process.on('SIGTERM', async () => {
  await broker.close({ timeout: 1000 });
  process.exit(0);
});
