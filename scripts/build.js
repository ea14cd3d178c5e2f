#!/usr/bin/env node
// Builds the native addon with the napi-rs CLI. `--if-missing` skips the build when the
// addon already exists; `--debug` builds without optimisations.
//
// The build writes into a scratch directory and then renames each output into place:
// a process that already loaded the old addon keeps its (now unlinked) file intact.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { cargoEnv } = require('./v8-archive');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const ADDON = 'enclave-broker.linux-x64-gnu.node';

if (args.includes('--if-missing') && fs.existsSync(path.join(root, ADDON))) process.exit(0);

const out = path.join(root, 'target', 'napi-out');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
const napiArgs = ['build', '--platform', '--output-dir', out, '--js', 'binding.js', '--dts', 'binding.d.ts'];
napiArgs.push('--no-const-enum');
if (!args.includes('--debug')) napiArgs.push('--release');

const result = spawnSync(process.execPath, [napi, ...napiArgs], { cwd: root, env: cargoEnv(root), stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);

for (const name of fs.readdirSync(out)) {
  fs.renameSync(path.join(out, name), path.join(root, name));
}
