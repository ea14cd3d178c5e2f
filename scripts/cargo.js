#!/usr/bin/env node
// `cargo <args>` with RUSTY_V8_ARCHIVE pointed at a local V8 archive when one exists.
'use strict';

const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { cargoEnv } = require('./v8-archive');
const { requireCargo } = require('./require-cargo');

const root = path.resolve(__dirname, '..');
requireCargo();
const result = spawnSync('cargo', process.argv.slice(2), { cwd: root, env: cargoEnv(root), stdio: 'inherit' });
process.exit(result.status ?? 1);
