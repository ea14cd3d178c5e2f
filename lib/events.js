// Events cross from the core as JSON lines joined by '\n' (JSON text never contains a raw
// newline), so a batch becomes one array with a single parse.
'use strict';

function parseEventLines(lines) {
  if (lines === '') return [];
  return JSON.parse(`[${lines.replaceAll('\n', ',')}]`);
}

module.exports = { parseEventLines };
