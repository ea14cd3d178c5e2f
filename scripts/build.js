#!/usr/bin/env node
// Builds the native addon (napi-rs CLI) and the engine binary that runs scripts.
// `--if-missing` skips the build when both exist; `--debug` builds without optimisations.
//
// Outputs are written elsewhere and renamed into place: a process that already loaded
// the old addon, or is running the old engine, keeps its (now unlinked) file intact.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { cargoEnv } = require('./v8-archive');
const { requireCargo } = require('./require-cargo');
const platform = require('../lib/platform');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const debug = args.includes('--debug');
const { addon: ADDON, engine: ENGINE } = platform.describe();

if (args.includes('--if-missing') && [ADDON, ENGINE].every((f) => fs.existsSync(path.join(root, f)))) {
  process.exit(0);
}
requireCargo();

function run(command, commandArgs) {
  const result = spawnSync(command, commandArgs, { cwd: root, env: cargoEnv(root), stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const out = path.join(root, 'target', 'napi-out');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
const napiArgs = ['build', '--platform', '--output-dir', out, '--js', 'binding.js', '--dts', 'binding.d.ts'];
napiArgs.push('--no-const-enum');
if (!debug) napiArgs.push('--release');
run(process.execPath, [napi, ...napiArgs]);

const cargoArgs = ['build', '-p', 'enclave-broker-core', '--bin', 'enclave-engine'];
if (!debug) cargoArgs.push('--release');
run('cargo', cargoArgs);
const engineStaging = path.join(out, ENGINE);
fs.copyFileSync(path.join(root, 'target', debug ? 'debug' : 'release', ENGINE), engineStaging);
fs.chmodSync(engineStaging, 0o755);

for (const name of fs.readdirSync(out)) {
  fs.renameSync(path.join(out, name), path.join(root, name));
}
