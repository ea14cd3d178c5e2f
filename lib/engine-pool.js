// `runtimePool`: settings of the engine pool, which every broker in this process shares
// (the last broker to set a value wins). `minSize` engine processes are started ahead of
// demand, each hosting up to `isolatesPerEngine` executions at once (README "Engine
// processes and isolates"); `memoryBudget` (bytes) bounds the sum of the memory ceilings of running
// executions, and `maxQueued` how many may wait for it before new ones are refused with
// ENGINE_CAPACITY_EXCEEDED (503 on the HTTP server). See README "Engine memory budget".
'use strict';

const native = require('./native');

const MAX_ISOLATES_PER_ENGINE = 256;

function count(name, value, { min }) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`runtimePool.${name} must be an integer of at least ${min}`);
  }
  return value;
}

function applyRuntimePool(options, { startEngines = true } = {}) {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object') throw new TypeError('runtimePool must be an object');
  const minSize = count('minSize', options.minSize, { min: 0 });
  const memoryBudget = count('memoryBudget', options.memoryBudget, { min: 1 });
  const maxQueued = count('maxQueued', options.maxQueued, { min: 0 });
  const isolatesPerEngine = count('isolatesPerEngine', options.isolatesPerEngine, { min: 1 });
  if (isolatesPerEngine !== undefined && isolatesPerEngine > MAX_ISOLATES_PER_ENGINE) {
    throw new TypeError(`runtimePool.isolatesPerEngine must be at most ${MAX_ISOLATES_PER_ENGINE}`);
  }
  if (isolatesPerEngine !== undefined) native.configureEngineIsolates(isolatesPerEngine);
  if (memoryBudget !== undefined || maxQueued !== undefined) native.configureEnginePool(memoryBudget, maxQueued);
  if (minSize !== undefined && startEngines) native.prewarmEngine(minSize);
}

module.exports = { applyRuntimePool };
