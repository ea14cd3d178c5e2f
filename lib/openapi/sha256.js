// SHA-256 hex of a text, for spec change detection. node:crypto is loaded on first use:
// it costs a few milliseconds, which importing the package should not pay.
'use strict';

let crypto;

function sha256Hex(text) {
  if (crypto === undefined) crypto = require('node:crypto');
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

module.exports = { sha256Hex };
