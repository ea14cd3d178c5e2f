// The core reports refusals as data, `{code, name, message}` (see src/error.rs); the facade
// throws them as the exceptions the original API throws: a TypeError for bad input, an
// Error otherwise. Nothing here reads a message to find out what happened.
'use strict';

const THROWN_AS = { TypeError, RangeError, Error };

function isBindingError(value) {
  return value !== null && typeof value === 'object' && typeof value.code === 'string' && typeof value.name === 'string';
}

function toException(error) {
  const Thrown = THROWN_AS[error.name] ?? Error;
  return new Thrown(error.message);
}

// `result` of a binding call that returns a value or a BindingError: the value, or throws.
function unwrap(result) {
  if (isBindingError(result)) throw toException(result);
  return result;
}

module.exports = { unwrap, toException, isBindingError };
