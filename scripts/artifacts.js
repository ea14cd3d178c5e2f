#!/usr/bin/env node
// Puts the built binaries into their platform packages, `npm/<suffix>/`, as napi-rs's
// `napi artifacts` does for the addon, with the engine binary beside it:
//   - when `artifacts/` exists (the release workflow downloads each build job's output there,
//     one folder per target), every folder's addon and engine go to their package;
//   - otherwise this machine's own build (`npm run build`, in the repository root) goes to
//     this machine's package.
// `--if-present` (the prepack step) does nothing when nothing is built. The engine is
// stripped by cargo's release profile (`strip = "symbols"`). A file whose copy is already
// in place (same size and modification time) is not copied again. Progress goes to stderr,
// so that `npm pack --json` (which runs this as prepack) keeps a clean stdout.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const platform = require('../lib/platform');

const root = path.resolve(__dirname, '..');
const ifPresent = process.argv.includes('--if-present');

function upToDate(source, target) {
  if (!fs.existsSync(target)) return false;
  const [a, b] = [fs.statSync(source), fs.statSync(target)];
  return a.size === b.size && Math.trunc(a.mtimeMs) === Math.trunc(b.mtimeMs);
}

// Copied under a temporary name and renamed, so a process running the old file keeps it.
function place(source, target, mode) {
  if (!upToDate(source, target)) {
    const staging = `${target}.partial`;
    fs.copyFileSync(source, staging);
    fs.chmodSync(staging, mode);
    const { atime, mtime } = fs.statSync(source);
    fs.utimesSync(staging, atime, mtime);
    fs.renameSync(staging, target);
  }
  return fs.statSync(target).size;
}

const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

// Copies one target's addon and engine from `dir` into npm/<suffix>/; false if `dir` lacks them.
function packageTarget(suffix, dir) {
  const { addon, engine } = platform.describe(suffix);
  const sources = [path.join(dir, addon), path.join(dir, engine)];
  if (!sources.every((f) => fs.existsSync(f))) return false;
  const packageDir = path.join(root, 'npm', suffix);
  if (!fs.existsSync(path.join(packageDir, 'package.json'))) {
    throw new Error(`npm/${suffix}/package.json is missing: ${suffix} is not a target in package.json's napi.targets`);
  }
  const sizes = [place(sources[0], path.join(packageDir, addon), 0o755), place(sources[1], path.join(packageDir, engine), 0o755)];
  console.error(`npm/${suffix}: ${addon} ${mb(sizes[0])}, ${engine} ${mb(sizes[1])}`);
  return true;
}

function fromArtifacts(artifactsDir) {
  const folders = fs.readdirSync(artifactsDir, { withFileTypes: true }).filter((e) => e.isDirectory());
  let placed = 0;
  for (const suffix of platform.SUPPORTED) {
    const folder = folders.find((e) => fs.existsSync(path.join(artifactsDir, e.name, platform.describe(suffix).addon)));
    if (folder === undefined) {
      console.warn(`artifacts/: nothing built for ${suffix}`);
      continue;
    }
    if (!packageTarget(suffix, path.join(artifactsDir, folder.name))) {
      throw new Error(`artifacts/${folder.name} has the ${suffix} addon but not its engine binary`);
    }
    placed++;
  }
  if (placed === 0) throw new Error('artifacts/ holds no built target');
}

function main() {
  const artifactsDir = path.join(root, 'artifacts');
  if (fs.existsSync(artifactsDir)) {
    fromArtifacts(artifactsDir);
    return;
  }
  const host = platform.describe();
  if (!host.supported) throw new Error(`This machine (${host.suffix}) is not one of the targets: ${platform.SUPPORTED.join(', ')}`);
  if (packageTarget(host.suffix, root)) return;
  if (ifPresent) {
    console.error(`Nothing built for ${host.suffix} (npm run build): npm/${host.suffix} left as it is.`);
    return;
  }
  throw new Error(`Nothing built for ${host.suffix}: run \`npm run build\` first (it writes ${host.addon} and ${host.engine}).`);
}

try {
  main();
} catch (error) {
  console.error(error.message);
  process.exit(1);
}
