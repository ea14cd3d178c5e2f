// minimatch(path, pattern, {nocase}) and braceExpand(pattern), with minimatch 10's answers
// (what the original's EventFilter calls for `glob` patterns): the core's glob
// (crates/core/src/filter/glob.rs), which the event filters use. This file keeps
// minimatch's argument checks and a cache of compiled patterns.
'use strict';

const native = require('./native');
const { unwrap } = require('./binding-error');

const CACHE_LIMIT = 256;
const cache = new Map();

function checkPattern(pattern) {
  if (typeof pattern !== 'string') throw new TypeError('invalid pattern');
}

/**
 * minimatch(path, pattern, {nocase}): whether `path` matches the glob `pattern`.
 * A non-string pattern throws TypeError('invalid pattern'), as in minimatch.
 */
function minimatch(path, pattern, options) {
  checkPattern(pattern);
  const nocase = !!(options && options.nocase);
  const key = (nocase ? 'i:' : '-:') + pattern;
  let glob = cache.get(key);
  if (glob === undefined) {
    glob = unwrap(native.BindingGlob.compile(pattern, nocase));
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value);
    cache.set(key, glob);
  }
  return glob.matches(String(path));
}

function braceExpand(pattern) {
  checkPattern(pattern);
  return unwrap(native.braceExpand(pattern));
}

module.exports = { minimatch, braceExpand };
