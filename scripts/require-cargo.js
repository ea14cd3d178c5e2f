// Building from source needs Rust. Without it napi-rs fails with "cargo metadata failed to
// run", which does not say what is missing; this says it, and where to get it.
'use strict';

const { spawnSync } = require('node:child_process');
const { PACKAGE_NAME, SUPPORTED } = require('../lib/platform');

function requireCargo() {
  const probe = spawnSync('cargo', ['--version'], { stdio: 'ignore' });
  if (probe.error === undefined) return;
  const reason = probe.error.code === 'ENOENT' ? 'cargo is not on PATH' : `cargo did not run (${probe.error.message})`;
  console.error(
    [
      `Building ${PACKAGE_NAME} from source needs Rust, and ${reason}.`,
      'Install Rust from https://rustup.rs (it installs cargo), open a new shell so that PATH has ~/.cargo/bin, and run this again.',
      `Using the package needs no Rust: \`npm install ${PACKAGE_NAME}\` installs prebuilt binaries for ${SUPPORTED.join(', ')}.`,
    ].join('\n'),
  );
  process.exit(1);
}

module.exports = { requireCargo };
