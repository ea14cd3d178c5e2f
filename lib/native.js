// The generated napi-rs loader, private to the facade, plus the location of the engine
// binary that runs scripts (it ships next to the addon, or in the platform package).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const platform = require('./platform');

const ROOT = path.join(__dirname, '..');

const BUILD_FROM_SOURCE =
  'To build it from source instead: install Rust (https://rustup.rs), clone the repository of ' +
  `${platform.PACKAGE_NAME}, run \`npm install && npm run build\` in the clone, and install that folder ` +
  '(`npm install /path/to/clone`): the addon and the engine are then found next to index.js.';

// One message for every way the addon can be missing: the platform, the package it comes
// in, and how to build it instead. napi-rs's own errors stay attached as the cause.
function missingBinaryError(cause) {
  const host = platform.describe();
  let why;
  if (!host.supported) {
    why =
      `There is no prebuilt ${platform.PACKAGE_NAME} for this platform (${host.suffix}): it looked for the ` +
      `package ${host.packageName}, which is not published. Prebuilt packages exist for ${platform.SUPPORTED.join(', ')}.`;
  } else {
    let installed = false;
    try {
      require.resolve(`${host.packageName}/package.json`);
      installed = true;
    } catch {
      // Not installed; said below.
    }
    why = installed
      ? `The package ${host.packageName} is installed, but its addon ${host.addon} failed to load ` +
        `(see the cause: a C library older than the one it was built for, or a damaged install).`
      : `It looked for the package ${host.packageName}, which npm installs as an optional dependency, and it is ` +
        'not installed: reinstall without --omit=optional (or --no-optional), on this platform, so that npm ' +
        'picks the package for it.';
  }
  return new Error(`${platform.PACKAGE_NAME} could not load its native addon for ${host.suffix}. ${why} ${BUILD_FROM_SOURCE}`, {
    cause,
  });
}

let native;
try {
  native = require('../binding.js');
} catch (error) {
  throw missingBinaryError(error);
}

function findEngine() {
  if (process.env.ENCLAVE_BROKER_ENGINE) return process.env.ENCLAVE_BROKER_ENGINE;
  const { engine, packageName } = platform.describe();
  const local = path.join(ROOT, engine);
  if (fs.existsSync(local)) return local;
  try {
    const packaged = path.join(path.dirname(require.resolve(`${packageName}/package.json`)), engine);
    if (fs.existsSync(packaged)) return packaged;
  } catch {
    // Not installed from a platform package.
  }
  return undefined;
}

const engine = findEngine();
if (engine !== undefined) native.setEngineExecutable(engine);

module.exports = native;
