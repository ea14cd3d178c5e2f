// ToolRegistry: the original's zod-validated tool registry (b/tool-registry.ts), plus the
// seed API's `parameters` form of `register` and `getDocumentation()`.
'use strict';

const { MAX_TOOL_NAME_BYTES } = require('./native');

const PARAMETER_TYPES = ['string', 'number', 'boolean', 'object', 'array'];

function received(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

// A zod-v4-shaped issue list, so messages read the same whichever validator produced them.
function issuesMessage(issues) {
  return JSON.stringify(issues, null, 2);
}

function typeIssue(expected, path, value) {
  return {
    expected,
    code: 'invalid_type',
    path,
    message: `Invalid input: expected ${expected}, received ${received(value)}`,
  };
}

function isRecord(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// The original's default schema: z.record(z.string(), z.unknown()).
const anyRecord = {
  safeParse(value) {
    if (!isRecord(value)) {
      return { success: false, error: { message: issuesMessage([typeIssue('record', [], value)]) } };
    }
    return { success: true, data: { ...value } };
  },
};

function matchesType(type, value) {
  switch (type) {
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isRecord(value);
    case 'number':
      return typeof value === 'number' && !Number.isNaN(value);
    default:
      return typeof value === type;
  }
}

// The seed form `parameters: {name: {type, description, required?, default?}}` as a
// validator with z.object semantics: type checks, required keys, defaults, unknown keys dropped.
function parametersSchema(name, parameters) {
  for (const [key, def] of Object.entries(parameters)) {
    if (!isRecord(def) || !PARAMETER_TYPES.includes(def.type)) {
      throw new TypeError(
        `Tool "${name}" parameter "${key}" needs a type of ${PARAMETER_TYPES.map((t) => `'${t}'`).join(', ')}`,
      );
    }
  }
  return {
    safeParse(value) {
      if (!isRecord(value)) {
        return { success: false, error: { message: issuesMessage([typeIssue('object', [], value)]) } };
      }
      const data = {};
      const issues = [];
      for (const [key, def] of Object.entries(parameters)) {
        let v = value[key];
        if (v === undefined && def.default !== undefined) v = def.default;
        if (v === undefined) {
          if (def.required) issues.push(typeIssue(def.type, [key], undefined));
          continue;
        }
        if (!matchesType(def.type, v)) {
          issues.push(typeIssue(def.type, [key], v));
          continue;
        }
        data[key] = v;
      }
      if (issues.length > 0) return { success: false, error: { message: issuesMessage(issues) } };
      return { success: true, data };
    },
  };
}

// A schema that throws (a refine or transform that throws, a broken custom schema) is a
// validation failure, never an exception out of validate()/execute().
function runSchema(schema, value) {
  try {
    if (typeof schema.safeParse === 'function') return schema.safeParse(value);
    return { success: true, data: schema.parse(value) };
  } catch (error) {
    return { success: false, error };
  }
}

function safeString(value) {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

// Reads a property of a thrown value; getters that throw count as absent.
function readProperty(value, key) {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return undefined;
  try {
    return value[key];
  } catch {
    return undefined;
  }
}

// `{code, message, data?}` of whatever a handler threw: its own `code`, else EXECUTION_ERROR.
function handlerFailure(error) {
  const code = readProperty(error, 'code');
  const message = readProperty(error, 'message');
  const data = readProperty(error, 'data');
  const failure = {
    code: code !== undefined && code !== null ? safeString(code) : 'EXECUTION_ERROR',
    message: message !== undefined ? safeString(message) : safeString(error),
  };
  if (data !== undefined) failure.data = data;
  return failure;
}

function describeZodType(schema) {
  const def = schema && (schema._zod ? schema._zod.def : schema._def);
  if (!def) return 'unknown';
  const type = def.type || (typeof def.typeName === 'string' ? def.typeName.replace(/^Zod/, '').toLowerCase() : '');
  if (type === 'optional' || type === 'default' || type === 'nullable') return describeZodType(def.innerType);
  return type || 'unknown';
}

function isOptionalZod(schema) {
  if (schema && typeof schema.isOptional === 'function') {
    try {
      return schema.isOptional();
    } catch {
      return false;
    }
  }
  return false;
}

// A name a script could call: scripts cannot call names over MAX_TOOL_NAME_BYTES.
function checkName(name) {
  if (typeof name !== 'string' || name === '') throw new TypeError('Tool name must be a non-empty string');
  if (Buffer.byteLength(name) > MAX_TOOL_NAME_BYTES) {
    throw new TypeError(`Tool name exceeds maximum length (${MAX_TOOL_NAME_BYTES} bytes)`);
  }
}

class ToolRegistry {
  constructor() {
    this._tools = new Map();
    this._validators = new Map();
    this._secrets = new Map();
  }

  register(def) {
    if (!isRecord(def)) throw new TypeError('Tool definition must be an object');
    const { name } = def;
    checkName(name);
    if (this._tools.has(name)) throw new Error(`Tool "${name}" is already registered`);
    this._validators.set(name, this._validatorFor(def));
    this._tools.set(name, def);
  }

  // Upsert, used by the OpenAPI loader in the original.
  replace(def) {
    checkName(isRecord(def) ? def.name : undefined);
    this._validators.set(def.name, this._validatorFor(def));
    this._tools.set(def.name, def);
  }

  _validatorFor(def) {
    if (typeof def.handler !== 'function') throw new TypeError(`Tool "${def.name}" needs a handler function`);
    if (def.argsSchema !== undefined && def.argsSchema !== null) {
      const s = def.argsSchema;
      if (typeof s.safeParse !== 'function' && typeof s.parse !== 'function') {
        throw new TypeError(`Tool "${def.name}" argsSchema must be a zod schema (safeParse or parse)`);
      }
    }
    if (def.secrets !== undefined && !(Array.isArray(def.secrets) && def.secrets.every((s) => typeof s === 'string'))) {
      throw new TypeError(`Tool "${def.name}" secrets must be an array of strings`);
    }
    return def.argsSchema ?? (isRecord(def.parameters) ? parametersSchema(def.name, def.parameters) : anyRecord);
  }

  unregister(name) {
    this._validators.delete(name);
    return this._tools.delete(name);
  }

  has(name) {
    return this._tools.has(name);
  }

  get(name) {
    return this._tools.get(name);
  }

  list() {
    return [...this._tools.keys()];
  }

  getConfigs() {
    const configs = {};
    for (const [name, def] of this._tools) {
      if (def.config !== undefined) configs[name] = def.config;
    }
    return configs;
  }

  validate(name, args) {
    const tool = this._tools.get(name);
    if (tool === undefined) return { success: false, error: `Unknown tool: ${name}` };
    const result = runSchema(this._validators.get(name), args);
    if (result.success) return { success: true, validatedArgs: result.data };
    const message = readProperty(result.error, 'message');
    return { success: false, error: `Invalid arguments: ${message !== undefined ? safeString(message) : safeString(result.error)}` };
  }

  setSecret(key, value) {
    if (typeof key !== 'string') throw new TypeError('Secret key must be a string');
    this._secrets.set(key, value);
  }

  removeSecret(key) {
    return this._secrets.delete(key);
  }

  hasSecret(key) {
    return this._secrets.has(key);
  }

  getRequiredSecrets(name) {
    const tool = this._tools.get(name);
    return tool && Array.isArray(tool.secrets) ? [...tool.secrets] : [];
  }

  clearSecrets() {
    this._secrets.clear();
  }

  // Never throws: every failure is `{success: false, error: {code, message}}`. `invoke`
  // (internal, not in the original) runs the handler, so a broker can wrap it in middleware.
  async execute(name, args, ctx = {}, invoke = undefined) {
    const started = Date.now();
    const done = (result) => ({ ...result, durationMs: Date.now() - started });
    const tool = this._tools.get(name);
    if (tool === undefined) {
      return done({ success: false, error: { code: 'UNKNOWN_TOOL', message: `Unknown tool: ${name}` } });
    }
    const validation = this.validate(name, args);
    if (!validation.success) {
      return done({ success: false, error: { code: 'VALIDATION_ERROR', message: validation.error } });
    }
    const secrets = {};
    for (const key of tool.secrets ?? []) {
      if (!this._secrets.has(key)) {
        return done({
          success: false,
          error: { code: 'SECRET_ERROR', message: `Missing required secret "${key}" for tool "${name}"` },
        });
      }
      secrets[key] = this._secrets.get(key);
    }
    const context = { sessionId: ctx.sessionId, callId: ctx.callId, secrets, signal: ctx.signal };
    try {
      const value = await (invoke === undefined
        ? tool.handler(validation.validatedArgs, context)
        : invoke(name, validation.validatedArgs, context, tool.handler));
      return done({ success: true, value });
    } catch (error) {
      return done({ success: false, error: handlerFailure(error) });
    }
  }

  clear() {
    this._tools.clear();
    this._validators.clear();
  }

  get size() {
    return this._tools.size;
  }

  // Tool documentation for an LLM prompt: how to call each tool and with which arguments.
  getDocumentation() {
    const sections = [];
    for (const [name, def] of this._tools) {
      const lines = [`## ${name}`];
      if (def.description) lines.push(def.description);
      const params = [];
      if (isRecord(def.parameters) && !def.argsSchema) {
        for (const [key, p] of Object.entries(def.parameters)) {
          const flags = [p.type, p.required ? 'required' : 'optional'];
          if (p.default !== undefined) flags.push(`default: ${JSON.stringify(p.default)}`);
          params.push(`- ${key} (${flags.join(', ')})${p.description ? `: ${p.description}` : ''}`);
        }
      } else if (def.argsSchema) {
        const shape = typeof def.argsSchema.shape === 'function' ? def.argsSchema.shape() : def.argsSchema.shape;
        if (isRecord(shape)) {
          for (const [key, field] of Object.entries(shape)) {
            const flags = [describeZodType(field), isOptionalZod(field) ? 'optional' : 'required'];
            const description = field && field.description ? `: ${field.description}` : '';
            params.push(`- ${key} (${flags.join(', ')})${description}`);
          }
        }
      }
      lines.push(`Usage: await callTool(${JSON.stringify(name)}, { ... })`);
      if (params.length > 0) lines.push('Arguments:', ...params);
      else lines.push('Arguments: an object');
      sections.push(lines.join('\n'));
    }
    return sections.join('\n\n');
  }
}

function createToolRegistry() {
  return new ToolRegistry();
}

module.exports = { ToolRegistry, createToolRegistry };
