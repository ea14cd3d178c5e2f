// The value codec (`createValueCodec`): how a JavaScript value becomes plain JSON data when it
// crosses the sandbox boundary. It lives with the engine (crates/core/src/engine/child/
// value-codec.js), which runs it inside every sandbox context; the addon carries its text
// and the facade evaluates that same text here, once, in this realm, so tool results and
// return values are copied by one rule.
'use strict';

const vm = require('node:vm');
const native = require('./native');

const { createValueCodec } = vm.runInThisContext(
  `(function () {\n'use strict';\n${native.valueCodecSource()}\nreturn { createValueCodec };\n})()`,
  { filename: 'value-codec.js' },
);

module.exports = { createValueCodec };
