// Which prebuilt platform package serves this machine, in napi-rs's naming: the package
// `enclave-broker-rs-<suffix>` (from `npm/<suffix>/`) holds `enclave-broker.<suffix>.node`
// and the engine binary. The build and packaging scripts use the same names.
'use strict';

const fs = require('node:fs');
const { name: PACKAGE_NAME, napi } = require('../package.json');

// The targets napi-rs builds for (package.json `napi.targets`), as their npm suffixes.
const SUFFIXES = {
  'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
  'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
  'x86_64-apple-darwin': 'darwin-x64',
  'aarch64-apple-darwin': 'darwin-arm64',
  'x86_64-pc-windows-msvc': 'win32-x64-msvc',
};

function suffixOfTarget(target) {
  const suffix = SUFFIXES[target];
  if (suffix === undefined) throw new Error(`Unknown build target ${target}`);
  return suffix;
}

// Linux builds differ by C library. The same checks as napi-rs's loader: musl's ldd says
// so; else Node's report tells whether it runs on glibc (slower, so second).
let libc;
function linuxLibc() {
  if (libc !== undefined) return libc;
  try {
    libc = fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl') ? 'musl' : 'gnu';
  } catch {
    try {
      libc = process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl';
    } catch {
      libc = 'gnu';
    }
  }
  return libc;
}

// This machine's suffix, whether or not a package is built for it.
function hostSuffix(platform = process.platform, arch = process.arch) {
  if (platform === 'linux') return `linux-${arch}-${linuxLibc()}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

const SUPPORTED = napi.targets.map(suffixOfTarget);

function engineFile(suffix) {
  return suffix.startsWith('win32-') ? 'enclave-engine.exe' : 'enclave-engine';
}

function describe(suffix = hostSuffix()) {
  return {
    suffix,
    supported: SUPPORTED.includes(suffix),
    packageName: `${PACKAGE_NAME}-${suffix}`,
    addon: `${napi.binaryName}.${suffix}.node`,
    engine: engineFile(suffix),
  };
}

module.exports = { PACKAGE_NAME, SUPPORTED, hostSuffix, suffixOfTarget, describe };
