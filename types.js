// enclave-broker-rs/types: the protocol helpers of @enclave-vm/types 2.15.2 under their names
// (ids, states, limits, event guards, zod schemas and parse* functions, reference tokens,
// encryption constants, filter constants), matching the events this package emits.
'use strict';

module.exports = {
  ...require('./lib/types/protocol'),
  ...require('./lib/types/events'),
  ...require('./lib/types/encryption'),
  ...require('./lib/types/schemas'),
  ...require('./lib/types/filter'),
};
