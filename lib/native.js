// The generated napi-rs loader, private to the facade, plus the location of the engine
// binary that runs scripts (it ships next to the addon, or in the platform package).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const native = require('../binding.js');

const ENGINE = 'enclave-engine';

function findEngine() {
  if (process.env.ENCLAVE_BROKER_ENGINE) return process.env.ENCLAVE_BROKER_ENGINE;
  const local = path.join(__dirname, '..', ENGINE);
  if (fs.existsSync(local)) return local;
  try {
    const pkg = require.resolve(`enclave-broker-rs-${process.platform}-${process.arch}-gnu/package.json`);
    const packaged = path.join(path.dirname(pkg), ENGINE);
    if (fs.existsSync(packaged)) return packaged;
  } catch {
    // Not installed from a platform package.
  }
  return undefined;
}

const engine = findEngine();
if (engine !== undefined) native.setEngineExecutable(engine);

module.exports = native;
