// The generated napi-rs loader. Private: only the facade talks to the native layer.
'use strict';

module.exports = require('../binding.js');
