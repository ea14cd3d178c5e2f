// Finds a prebuilt V8 static library for the `v8` crate, for machines without internet
// access: `RUSTY_V8_ARCHIVE` if set, else `shared/v8/` beside the checkout (where the
// development machines and CI keep it). Without one, the `v8` crate downloads its official
// prebuilt archive as usual.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const ARCHIVE = 'librusty_v8_simdutf_release_x86_64-unknown-linux-gnu.a.gz';

function findV8Archive(root) {
  if (process.env.RUSTY_V8_ARCHIVE) return process.env.RUSTY_V8_ARCHIVE;
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  const beside = path.resolve(root, '..', 'shared', 'v8', ARCHIVE);
  return fs.existsSync(beside) ? beside : undefined;
}

function cargoEnv(root) {
  const env = { ...process.env };
  const archive = findV8Archive(root);
  if (archive) env.RUSTY_V8_ARCHIVE = archive;
  return env;
}

module.exports = { cargoEnv, findV8Archive };
