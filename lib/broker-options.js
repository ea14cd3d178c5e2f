// The seed's broker options of S003 in docs/compatibility.md, on top of the original's BrokerConfig:
//   securityLevel  'STRICT' | 'SECURE' | 'STANDARD' | 'PERMISSIVE', the top-level form of the
//                  original's `enclave.securityLevel` (C9 in docs/compatibility.md), which wins when both are
//                  given. A level is the original's preset of the limits this package shares
//                  with it: the depth of tool results and return values (5, 10, 20, 50). As
//                  under the original's broker, the level's timeout and tool-call count have
//                  no effect (`limits` decide), and its AST rules do not apply (real JavaScript).
// (`mode`, where scripts run, is runtime-mode.js.)
'use strict';

const { checkSecurityLevel } = require('./config');

// The enclave config a broker's sessions get, with a top-level `securityLevel` applied.
function enclaveWithSecurityLevel(config) {
  if (config.securityLevel === undefined) return config.enclave;
  checkSecurityLevel(config.securityLevel, 'securityLevel');
  const enclave = config.enclave ?? {};
  if (enclave === null || typeof enclave !== 'object' || enclave.securityLevel !== undefined) return enclave;
  return { ...enclave, securityLevel: config.securityLevel };
}

module.exports = { enclaveWithSecurityLevel };
