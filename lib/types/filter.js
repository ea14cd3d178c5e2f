// Event filter constants of @enclave-vm/types 2.15.2 (the broker's EventFilter uses the same).
'use strict';

const { FilterMode, PatternType, DEFAULT_ALWAYS_ALLOW } = require('../constants');

module.exports = { FilterMode, PatternType, DEFAULT_ALWAYS_ALLOW };
