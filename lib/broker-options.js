// The seed's broker options of S003, on top of the original's BrokerConfig:
//   securityLevel  'STRICT' | 'SECURE' | 'STANDARD' | 'PERMISSIVE', the top-level form of the
//                  original's `enclave.securityLevel` (contract C9), which wins when both are
//                  given. A level is the original's preset of the limits this package shares
//                  with it: the depth of tool results and return values (5, 10, 20, 50). As
//                  under the original's broker, the level's timeout and tool-call count have
//                  no effect (`limits` decide), and its AST rules do not apply (real JavaScript).
//   mode           where scripts run: 'embedded' (the default), in this process's engine pool.
'use strict';

const { checkSecurityLevel, show } = require('./config');

// The enclave config a broker's sessions get, with a top-level `securityLevel` applied.
function enclaveWithSecurityLevel(config) {
  if (config.securityLevel === undefined) return config.enclave;
  checkSecurityLevel(config.securityLevel, 'securityLevel');
  const enclave = config.enclave ?? {};
  if (enclave === null || typeof enclave !== 'object' || enclave.securityLevel !== undefined) return enclave;
  return { ...enclave, securityLevel: config.securityLevel };
}

// `mode`: only embedded execution exists for now; 'extracted' (a runtime worker reached at
// `runtimeUrl`) is refused with what it would need.
function resolveMode(config) {
  const mode = config.mode ?? 'embedded';
  if (mode === 'embedded') return mode;
  if (mode === 'extracted') {
    throw new Error(
      "mode: 'extracted' needs a runtime worker (a separate process at runtimeUrl) and is not available in this " +
        "version; use mode: 'embedded' (the default), which runs scripts in this process's engine pool",
    );
  }
  throw new TypeError(`mode must be 'embedded' or 'extracted', got ${show(mode)}`);
}

module.exports = { enclaveWithSecurityLevel, resolveMode };
