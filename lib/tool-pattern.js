// Tool-name patterns for ToolRouter, AccessController and RateLimiter (seed API): the core's
// matcher (crates/core/src/tools/pattern.rs, which also serves a session's allowedTools),
// so there is one rule for what a pattern means. `*` is one ':'-segment, `**` any, `?` one
// character other than ':', everything else literal.
'use strict';

const native = require('./native');
const { unwrap } = require('./binding-error');

/**
 * Compiles a tool-name pattern into a predicate. A name that is not a string is unmatched.
 * @param {string} pattern
 * @returns {(name: string) => boolean}
 */
function compileToolPattern(pattern) {
  if (typeof pattern !== 'string') throw new TypeError('Tool pattern must be a non-empty string');
  const compiled = unwrap(native.BindingToolPattern.compile(pattern));
  return (name) => typeof name === 'string' && compiled.matches(name);
}

module.exports = { compileToolPattern };
