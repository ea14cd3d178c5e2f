// The main job: a broker on the embedded, in-memory default with two tools, running a
// script that calls them. Prints the event stream as NDJSON, then the final result.
'use strict';

const { createBroker } = require('..');

const users = [
  { id: 1, name: 'Ada', team: 'engines' },
  { id: 2, name: 'Grace', team: 'compilers' },
  { id: 3, name: 'Linus', team: 'engines' },
];

const broker = createBroker({ limits: { heartbeatIntervalMs: 0 } });

broker
  .tool('users:list', {
    description: 'List users, optionally by team',
    handler: async ({ team }) => users.filter((u) => team === undefined || u.team === team),
  })
  .tool('greeting:compose', {
    description: 'Compose a greeting for a list of names',
    handler: async ({ names }) => `Hello, ${names.join(' and ')}!`,
  });

const script = `
  const team = await callTool('users:list', { team: 'engines' });
  console.log('found', team.length, 'users');
  const message = await callTool('greeting:compose', { names: team.map((u) => u.name) });
  return { message, count: team.length };
`;

async function main() {
  const result = await broker.execute(script, {
    onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
  });
  process.stdout.write(`\nresult: ${JSON.stringify(result, null, 2)}\n`);
  await broker.dispose();
  if (!result.success) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
