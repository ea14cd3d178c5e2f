// EventFilter: the original's server-side stream filter (b/event-filter.ts, t/filter.ts).
//
// The fields are plain instance properties (config, alwaysAllow, compiledRegexes, onError)
// and the code keeps the original's expressions where they decide which TypeError a
// malformed config produces: the HTTP handler reports those messages to clients
// (e.g. `{mode:'include'}` without `rules` → "this.config.rules is not iterable").
'use strict';

const native = require('./native');

const { minimatch } = require('./glob');
const { FilterMode, PatternType, DEFAULT_ALWAYS_ALLOW } = require('./constants');

// Longer inputs never reach a regex pattern: they simply do not match (ReDoS guard).
const MAX_REGEX_INPUT_LENGTH = 10000;
// Only this much of a pattern is inspected by the vulnerability heuristics below.
const MAX_PATTERN_LENGTH_FOR_REDOS_CHECK = 500;

// The original's heuristics for nested quantifiers, overlapping alternations and repeated
// groups. Bounded quantifiers keep the detectors themselves linear.
const REDOS_DETECTION_PATTERNS = {
  nestedQuantifiers: /\([^)]{0,100}[*+{][^)]{0,100}\)[*+{]/,
  alternationOverlap: /\([^|]{0,100}\|[^)]{0,100}\)[*+{]/,
  repeatedGroups: /\([^)]{0,100}[*+][^)]{0,100}\)[*+]/,
};

function isPotentiallyVulnerableRegex(pattern) {
  const safePattern =
    pattern.length > MAX_PATTERN_LENGTH_FOR_REDOS_CHECK ? pattern.slice(0, MAX_PATTERN_LENGTH_FOR_REDOS_CHECK) : pattern;
  try {
    if (REDOS_DETECTION_PATTERNS.nestedQuantifiers.test(safePattern)) return true;
    if (REDOS_DETECTION_PATTERNS.alternationOverlap.test(safePattern)) return true;
    if (REDOS_DETECTION_PATTERNS.repeatedGroups.test(safePattern)) return true;
  } catch {
    return false;
  }
  return false;
}

class EventFilter {
  constructor(options) {
    this.config = options.config;
    this.onError = options.onError;
    this.alwaysAllow = new Set(options.config.alwaysAllow ?? DEFAULT_ALWAYS_ALLOW);
    this.compiledRegexes = new Map();
    this.compilePatterns();
  }

  shouldSend(event) {
    if (this.alwaysAllow.has(event.type)) return true;
    const matches = this.matchesAnyRule(event);
    // Any mode other than 'include' filters as 'exclude', as in the original.
    if (this.config.mode === FilterMode.Include) return matches;
    return !matches;
  }

  filter(events) {
    return events.filter((event) => this.shouldSend(event));
  }

  matchesAnyRule(event) {
    return this.config.rules.some((rule) => this.matchesRule(event, rule));
  }

  // Types and content in one rule must both match; a rule with neither matches everything.
  matchesRule(event, rule) {
    const typeMatch = rule.types ? this.matchesTypeFilter(event, rule.types) : true;
    const contentMatch = rule.content ? this.matchesContentFilter(event, rule.content) : true;
    if (rule.types && rule.content) return typeMatch && contentMatch;
    return rule.types ? typeMatch : contentMatch;
  }

  matchesTypeFilter(event, filter) {
    return filter.types.includes(event.type);
  }

  matchesContentFilter(event, filter) {
    const matchMode = filter.match ?? 'any';
    if (matchMode === 'all') return filter.patterns.every((pattern) => this.matchesPattern(event, pattern));
    return filter.patterns.some((pattern) => this.matchesPattern(event, pattern));
  }

  matchesPattern(event, pattern) {
    const value = this.getFieldValue(event, pattern.field);
    if (value === undefined) return false;
    const stringValue = this.stringify(value);
    const patternValue = pattern.caseInsensitive ? pattern.pattern.toLowerCase() : pattern.pattern;
    const matchValue = pattern.caseInsensitive ? stringValue.toLowerCase() : stringValue;
    try {
      switch (pattern.type) {
        case PatternType.Exact:
          return matchValue === patternValue;
        case PatternType.Prefix:
          return matchValue.startsWith(patternValue);
        case PatternType.Regex:
          // The original tests the regex against the lowercased value when caseInsensitive.
          return this.matchRegex(pattern.pattern, matchValue, pattern.caseInsensitive);
        case PatternType.Glob:
          return minimatch(matchValue, patternValue, { nocase: pattern.caseInsensitive });
        default:
          return false;
      }
    } catch (error) {
      this.onError?.(error, event);
      return false;
    }
  }

  // Dot path from the event root ('payload.chunk', 'type'); without a field, the payload.
  getFieldValue(event, field) {
    if (!field) return event.payload;
    const parts = field.split('.');
    let value = event;
    for (const part of parts) {
      if (value === null || value === undefined) return undefined;
      if (typeof value !== 'object') return undefined;
      value = value[part];
    }
    return value;
  }

  stringify(value) {
    if (typeof value === 'string') return value;
    if (value === null || value === undefined) return '';
    return JSON.stringify(value);
  }

  matchRegex(pattern, value, caseInsensitive) {
    if (value.length > MAX_REGEX_INPUT_LENGTH) return false;
    const cacheKey = `${pattern}:${caseInsensitive ? 'i' : ''}`;
    const compiled = this.compiledRegexes.get(cacheKey);
    if (!compiled) {
      // Not compiled up front (an invalid pattern, already reported): compile per call,
      // and an invalid one never matches.
      try {
        return compileRegex(pattern, caseInsensitive).test(value);
      } catch {
        return false;
      }
    }
    try {
      return compiled.regex.test(value);
    } catch {
      return false;
    }
  }

  compilePatterns() {
    for (const rule of this.config.rules) {
      if (!rule.content?.patterns) continue;
      for (const pattern of rule.content.patterns) {
        if (pattern.type !== PatternType.Regex) continue;
        const cacheKey = `${pattern.pattern}:${pattern.caseInsensitive ? 'i' : ''}`;
        if (this.compiledRegexes.has(cacheKey)) continue;
        if (isPotentiallyVulnerableRegex(pattern.pattern)) {
          console.warn(
            `[EventFilter] Potentially vulnerable regex pattern detected: ${pattern.pattern}. ` +
              `Input length will be limited to ${MAX_REGEX_INPUT_LENGTH} characters for protection.`,
          );
        }
        try {
          const regex = compileRegex(pattern.pattern, pattern.caseInsensitive);
          this.compiledRegexes.set(cacheKey, { regex });
        } catch (error) {
          console.error(`Invalid regex pattern: ${pattern.pattern}`, error);
        }
      }
    }
  }
}

// Filters come from clients, so a pattern must never backtrack catastrophically on the
// event loop. Every pattern runs on a linear-time engine (Rust's regex); one it cannot
// express (lookaround, backreferences) runs on JavaScript's engine unless the ReDoS
// heuristics flag it, in which case it never matches. Throws for an invalid pattern.
function compileRegex(pattern, caseInsensitive) {
  const js = new RegExp(pattern, caseInsensitive ? 'i' : '');
  try {
    const linear = new native.LinearRegex(pattern, Boolean(caseInsensitive));
    return { test: (value) => linear.test(value) };
  } catch {
    return isPotentiallyVulnerableRegex(pattern) ? { test: () => false } : js;
  }
}

function createEventFilter(options) {
  return new EventFilter(options);
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
  createTypeFilter,
  createContentFilter,
  FilterMode,
  PatternType,
  DEFAULT_ALWAYS_ALLOW,
  MAX_REGEX_INPUT_LENGTH,
};
