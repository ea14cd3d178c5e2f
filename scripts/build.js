#!/usr/bin/env node
// Builds the native addon with the napi-rs CLI. `--if-missing` skips the build when the
// addon already exists; `--debug` builds without optimisations.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { cargoEnv } = require('./v8-archive');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const addon = path.join(root, 'enclave-broker.linux-x64-gnu.node');

if (args.includes('--if-missing') && fs.existsSync(addon)) process.exit(0);

const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
const napiArgs = ['build', '--platform', '--js', 'binding.js', '--dts', 'binding.d.ts', '--no-const-enum'];
if (!args.includes('--debug')) napiArgs.push('--release');

const result = spawnSync(process.execPath, [napi, ...napiArgs], { cwd: root, env: cargoEnv(root), stdio: 'inherit' });
process.exit(result.status ?? 1);
