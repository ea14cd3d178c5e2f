// EventFilter: the original's server-side stream filter (b/event-filter.ts, t/filter.ts),
// decided by the core (crates/core/src/filter/, through BindingEventFilter): the same
// filter the listen() server applies. This file keeps the original's shell: its instance
// fields, the TypeError texts of configs it cannot start from, its console output while
// compiling, and onError(error, event) for patterns that fail while matching.
'use strict';

const native = require('./native');
const { unwrap } = require('./binding-error');
const { FilterMode, PatternType, DEFAULT_ALWAYS_ALLOW } = require('./constants');

// Longer inputs never reach a regex pattern: they simply do not match (ReDoS guard).
const MAX_REGEX_INPUT_LENGTH = 10000;
// Answers of a filter that decides by type alone are kept per type, up to this many types.
const MAX_REMEMBERED_TYPES = 64;

// The option under which a filter the core compiled already (the HTTP rules' request
// filters, lib/http/session-handler.js) comes in, so it is not compiled twice.
const COMPILED = Symbol('compiled');

class EventFilter {
  #native;
  #byType;

  constructor(options) {
    this.config = options.config;
    this.onError = options.onError;
    // Also where a null config throws the original's TypeError.
    this.alwaysAllow = new Set(options.config.alwaysAllow ?? DEFAULT_ALWAYS_ALLOW);
    this.#native = options[COMPILED] ?? unwrap(native.BindingEventFilter.compile(JSON.stringify(this.config) ?? 'null'));
    this.#byType = this.#native.byTypeOnly ? new Map() : undefined;
    this.compiledRegexes = new Map();
    this.compilePatterns();
  }

  shouldSend(event) {
    const type = event.type;
    const byType = this.#byType;
    if (byType !== undefined) {
      let send = byType.get(type);
      if (send === undefined) {
        send = this.#native.sends(typeof type === 'string' ? type : undefined, undefined);
        if (byType.size < MAX_REMEMBERED_TYPES) byType.set(type, send);
      }
      return send;
    }
    const filter = this.#native;
    const answer = filter.sends(typeof type === 'string' ? type : undefined, filter.readsContent ? JSON.stringify(event) : undefined);
    if (typeof answer === 'boolean') return answer;
    for (const message of answer.errors) this.onError?.(new TypeError(message), event);
    if (answer.thrown !== undefined && answer.thrown !== null) throw new TypeError(answer.thrown);
    return answer.send;
  }

  filter(events) {
    return events.filter((event) => this.shouldSend(event));
  }

  // The original's constructor step: what the core printed while compiling, and the
  // compiled regexes by their cache key.
  compilePatterns() {
    for (const notice of this.#native.notices()) {
      if (notice.level === 'warn') console.warn(notice.message);
      else console.error(`Invalid regex pattern: ${notice.pattern}`, new SyntaxError(notice.message));
    }
    const filter = this.#native;
    this.#native.regexKeys().forEach((key, index) => {
      this.compiledRegexes.set(key, { regex: { test: (value) => filter.testRegex(index, String(value)) } });
    });
  }
}

function createEventFilter(options) {
  return new EventFilter(options);
}

// The EventFilter of `config`, which the core has compiled into `compiled` (a BindingEventFilter).
function eventFilterOf(config, compiled) {
  return new EventFilter({ config, [COMPILED]: compiled });
}

function createTypeFilter(mode, types) {
  return {
    mode: mode === 'include' ? FilterMode.Include : FilterMode.Exclude,
    rules: [{ types: { types } }],
  };
}

function createContentFilter(mode, pattern, patternType = PatternType.Regex) {
  return {
    mode: mode === 'include' ? FilterMode.Include : FilterMode.Exclude,
    rules: [{ content: { patterns: [{ type: patternType, pattern }] } }],
  };
}

module.exports = {
  EventFilter,
  createEventFilter,
  eventFilterOf,
  createTypeFilter,
  createContentFilter,
  FilterMode,
  PatternType,
  DEFAULT_ALWAYS_ALLOW,
  MAX_REGEX_INPUT_LENGTH,
};
