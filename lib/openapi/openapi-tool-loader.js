// OpenApiToolLoader: turns an OpenAPI 3 spec into tool definitions whose handlers call the
// upstream API (the original's b/openapi/openapi-tool-loader.ts, 1.U in docs/compatibility.md).
//
// One tool per operation; its args are the operation's parameters plus `body`, checked by
// a zod schema; its handler builds the request from them and returns the response body.
'use strict';

const { sha256Hex } = require('./sha256');
// zod is loaded on first use: importing the package should not pay for it.
let zod;
function zodLib() {
  if (zod === undefined) zod = require('zod').z;
  return zod;
}

// In the order operations of one path are turned into tools.
const HTTP_METHODS = ['get', 'post', 'put', 'delete', 'patch', 'head', 'options'];
const METHODS_WITH_BODY = ['post', 'put', 'patch', 'delete'];
const DEFAULT_TOOL_TIMEOUT_MS = 30000;
const DEFAULT_API_KEY_HEADER = 'X-API-Key';
const FORM_URLENCODED = 'application/x-www-form-urlencoded';
const MULTIPART = 'multipart/form-data';
const JSON_MEDIA_TYPE = 'application/json';

function isRecord(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function anyRecord() {
  return zodLib().record(zodLib().string(), zodLib().unknown());
}

// application/json and the structured `+json` suffix (RFC 6838).
function isJsonContentType(contentType) {
  return contentType.includes('application/json') || contentType.includes('+json');
}

function defaultOperationId(method, path) {
  return `${method}_${path.replace(/[^a-zA-Z0-9]/g, '_')}`;
}

// How a parameter value travels in a URL or header: objects and arrays as JSON.
function serializeParam(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// OpenAPI schema → zod type, for the types a tool argument can have.
function zodTypeFor(schema) {
  if (!isRecord(schema) || !schema.type) return zodLib().unknown();
  switch (schema.type) {
    case 'integer':
      return zodLib().number().int();
    case 'number':
      return zodLib().number();
    case 'boolean':
      return zodLib().boolean();
    case 'array':
      return zodLib().array(zodTypeFor(schema.items));
    case 'object':
      return anyRecord();
    case 'string': {
      const values = schema.enum;
      if (Array.isArray(values) && values.length > 0 && values.every((v) => typeof v === 'string')) {
        return zodLib().enum(values);
      }
      return zodLib().string();
    }
    default:
      return zodLib().unknown();
  }
}

// The request body's schema and the media type it is sent as: JSON first, then forms,
// then text, else a JSON record.
function bodySchemaFor(content) {
  const types = Object.keys(content);
  const json = types.find((type) => type.includes('json'));
  if (json !== undefined) {
    const schema = isRecord(content[json]) ? content[json].schema : undefined;
    return { schema: schema ? zodTypeFor(schema) : anyRecord(), mediaType: json };
  }
  for (const form of [FORM_URLENCODED, MULTIPART]) {
    if (content[form]) return { schema: anyRecord(), mediaType: form };
  }
  const text = types.find((type) => type.startsWith('text/'));
  if (text !== undefined) return { schema: zodLib().string(), mediaType: text };
  return { schema: anyRecord(), mediaType: JSON_MEDIA_TYPE };
}

function argsSchemaFor(operation) {
  const shape = {};
  for (const param of operation.parameters) {
    const type = zodTypeFor(param.schema);
    shape[param.name] = param.required === true ? type : type.optional();
  }
  let bodyMediaType;
  const requestBody = operation.requestBody;
  if (requestBody !== undefined && requestBody !== null) {
    const { schema, mediaType } = isRecord(requestBody.content)
      ? bodySchemaFor(requestBody.content)
      : { schema: anyRecord(), mediaType: undefined };
    shape.body = requestBody.required === true ? schema : schema.optional();
    bodyMediaType = mediaType;
  }
  const argsSchema = Object.keys(shape).length > 0 ? zodLib().object(shape) : anyRecord();
  return { argsSchema, bodyMediaType };
}

// Path-level parameters, overridden by the operation's own of the same name and location.
function mergeParameters(pathLevel, operationLevel) {
  const byKey = new Map();
  for (const list of [pathLevel, operationLevel]) {
    if (!Array.isArray(list)) continue;
    for (const param of list) {
      // A `$ref` parameter (no name of its own) cannot become an argument.
      if (!isRecord(param) || typeof param.name !== 'string') continue;
      byKey.set(`${param.in}:${param.name}`, param);
    }
  }
  return [...byKey.values()];
}

function listOperations(paths) {
  const operations = [];
  for (const [path, pathItem] of Object.entries(paths)) {
    if (!isRecord(pathItem)) continue;
    for (const method of HTTP_METHODS) {
      const operation = pathItem[method];
      if (!isRecord(operation)) continue;
      const ownId = typeof operation.operationId === 'string' ? operation.operationId : '';
      operations.push({
        method,
        path,
        operationId: ownId || defaultOperationId(method, path),
        summary: operation.summary,
        description: operation.description,
        parameters: mergeParameters(pathItem.parameters, operation.parameters),
        requestBody: operation.requestBody,
      });
    }
  }
  return operations;
}

function authHeader(auth) {
  if (!isRecord(auth) || !auth.token) return undefined;
  switch (auth.type) {
    case 'bearer':
      return { name: 'Authorization', value: `Bearer ${auth.token}` };
    case 'api-key':
      return { name: auth.header ?? DEFAULT_API_KEY_HEADER, value: auth.token };
    case 'basic':
      return { name: 'Authorization', value: `Basic ${auth.token}` };
    default:
      return undefined;
  }
}

// The header holding the credentials, which header parameters must not overwrite (even
// when no token is set, as the original).
function protectedHeaderName(auth) {
  if (!isRecord(auth)) return undefined;
  if (auth.type === 'bearer' || auth.type === 'basic') return 'authorization';
  if (auth.type === 'api-key') return String(auth.header ?? DEFAULT_API_KEY_HEADER).toLowerCase();
  return undefined;
}

function encodeBody(body, mediaType) {
  if (isJsonContentType(mediaType)) return JSON.stringify(body);
  if (mediaType === FORM_URLENCODED) return new URLSearchParams(body).toString();
  if (mediaType === MULTIPART) {
    const form = new FormData();
    for (const [key, value] of Object.entries(body)) form.append(key, value instanceof Blob ? value : String(value));
    return form;
  }
  if (mediaType.startsWith('text/')) return String(body);
  return JSON.stringify(body);
}

async function errorBody(response) {
  try {
    const contentType = response.headers.get('content-type') ?? '';
    return isJsonContentType(contentType) ? JSON.stringify(await response.json()) : await response.text();
  } catch {
    return '';
  }
}

function createHandler(operation, baseUrl, bodyMediaType, headers, auth) {
  let base = baseUrl;
  while (base.endsWith('/')) base = base.slice(0, -1);
  const path = operation.path.startsWith('/') ? operation.path : `/${operation.path}`;
  const credentials = authHeader(auth);
  const protectedHeader = protectedHeaderName(auth);
  const method = operation.method;

  return async (args, context) => {
    const params = isRecord(args) ? args : {};
    let url = base + path;
    const query = {};
    const headerParams = [];
    for (const param of operation.parameters) {
      const value = params[param.name];
      if (value === undefined) continue;
      if (param.in === 'path') {
        url = url.replace(`{${param.name}}`, encodeURIComponent(serializeParam(value)));
      } else if (param.in === 'query') {
        query[param.name] = serializeParam(value);
      } else if (param.in === 'header') {
        headerParams.push([param.name, serializeParam(value)]);
      }
    }
    const queryString = new URLSearchParams(query).toString();
    if (queryString) url += `?${queryString}`;

    const hasBody =
      (METHODS_WITH_BODY.includes(method) || operation.requestBody != null) &&
      Object.prototype.hasOwnProperty.call(params, 'body') &&
      params.body != null;
    const mediaType = bodyMediaType ?? JSON_MEDIA_TYPE;

    const requestHeaders = new Headers();
    // fetch sets a multipart Content-Type itself, with the boundary.
    if (hasBody && mediaType !== MULTIPART) requestHeaders.set('Content-Type', mediaType);
    for (const [name, value] of Object.entries(headers)) requestHeaders.set(name, value);
    if (credentials !== undefined) requestHeaders.set(credentials.name, credentials.value);
    for (const [name, value] of headerParams) {
      if (name.toLowerCase() === protectedHeader) continue;
      requestHeaders.set(name, value);
    }

    const init = { method: method.toUpperCase(), headers: requestHeaders, signal: context?.signal };
    if (hasBody) init.body = encodeBody(params.body, mediaType);

    const response = await fetch(url, init);
    if (!response.ok) {
      throw new Error(`HTTP ${response.status} ${response.statusText}: ${await errorBody(response)}`);
    }
    const contentType = response.headers.get('content-type') ?? '';
    return isJsonContentType(contentType) ? response.json() : response.text();
  };
}

// `servers[0].url` as a base URL: origin and path, resolved against `specUrl` when
// given. Undefined when the spec names no server.
function serverBaseUrl(spec, specUrl) {
  const servers = spec.servers;
  const server = Array.isArray(servers) && isRecord(servers[0]) ? servers[0].url : undefined;
  if (typeof server !== 'string' || server === '') return undefined;
  const resolved = specUrl === undefined ? new URL(server) : new URL(server, specUrl);
  return resolved.origin + resolved.pathname;
}

function checkOptions(options) {
  if (options !== undefined && options !== null && !isRecord(options)) {
    throw new TypeError('OpenApiToolLoader options must be an object');
  }
  const opts = options ?? {};
  for (const key of ['includeOperations', 'excludeOperations']) {
    if (opts[key] !== undefined && !Array.isArray(opts[key])) throw new TypeError(`${key} must be an array of operationIds`);
  }
  if (opts.namingStrategy !== undefined && typeof opts.namingStrategy !== 'function') {
    throw new TypeError('namingStrategy must be a function');
  }
  if (opts.headers !== undefined && !isRecord(opts.headers)) throw new TypeError('headers must be an object');
  return opts;
}

function checkSpec(spec) {
  if (!isRecord(spec)) throw new TypeError('OpenAPI spec must be an object');
  return spec;
}

class OpenApiToolLoader {
  #tools = [];
  #toolNames = new Set();
  #specHash;
  #baseUrl;

  // Use fromURL() or fromSpec(); `options.baseUrl` is already resolved here.
  constructor(spec, specHash, options, auth) {
    checkSpec(spec);
    const opts = checkOptions(options);
    this.#specHash = typeof specHash === 'string' ? specHash : sha256Hex(JSON.stringify(spec));
    this.#baseUrl = opts.baseUrl;
    this.#load(spec, opts, auth);
  }

  static async fromURL(url, options, auth) {
    const opts = checkOptions(options);
    const requestHeaders = new Headers(opts.headers ?? {});
    const credentials = authHeader(auth);
    if (credentials !== undefined) requestHeaders.set(credentials.name, credentials.value);

    let response;
    try {
      response = await fetch(url, { headers: requestHeaders });
    } catch (error) {
      // Node's fetch says only "fetch failed"; the cause says why (refused, DNS, bad URL).
      const reason = error?.cause?.message ?? error?.message ?? String(error);
      throw new Error(`Failed to fetch OpenAPI spec from ${url}: ${reason}`, { cause: error });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`Failed to fetch OpenAPI spec from ${url}: ${response.status}`);
    }
    let spec;
    try {
      spec = await response.json();
    } catch (error) {
      throw new Error(`OpenAPI spec from ${url} is not valid JSON: ${error.message}`, { cause: error });
    }
    checkSpec(spec);

    let baseUrl = opts.baseUrl;
    if (!baseUrl) {
      try {
        baseUrl = serverBaseUrl(spec, url) ?? new URL(url).origin;
      } catch {
        baseUrl = new URL(url).origin;
      }
    }
    return new OpenApiToolLoader(spec, sha256Hex(JSON.stringify(spec)), { ...opts, baseUrl }, auth);
  }

  static async fromSpec(spec, options, auth) {
    checkSpec(spec);
    const opts = checkOptions(options);
    let baseUrl = opts.baseUrl;
    if (!baseUrl) {
      try {
        baseUrl = serverBaseUrl(spec, undefined);
      } catch {
        throw new Error(
          `Cannot resolve relative server URL "${spec.servers[0].url}" without a source URL. Use fromURL() or provide an explicit baseUrl option.`,
        );
      }
    }
    return new OpenApiToolLoader(spec, sha256Hex(JSON.stringify(spec)), { ...opts, baseUrl }, auth);
  }

  getTools() {
    return [...this.#tools];
  }

  getToolNames() {
    return new Set(this.#toolNames);
  }

  getSpecHash() {
    return this.#specHash;
  }

  // The base URL the tools call (explicit, from the spec's servers, or the spec's origin);
  // undefined for a fromSpec() loader that had none. Not in the original.
  getBaseUrl() {
    return this.#baseUrl;
  }

  #load(spec, options, auth) {
    if (!isRecord(spec.paths)) return;
    const baseUrl = options.baseUrl ?? '';
    const headers = options.headers ?? {};
    const timeout = options.perToolDeadlineMs ?? DEFAULT_TOOL_TIMEOUT_MS;

    for (const operation of listOperations(spec.paths)) {
      const { operationId, method, path } = operation;
      if (options.includeOperations && !options.includeOperations.includes(operationId)) continue;
      if (options.excludeOperations && options.excludeOperations.includes(operationId)) continue;

      const name = this.#toolName(operation, options);
      if (this.#toolNames.has(name)) {
        throw new Error(
          `Duplicate tool name "${name}" generated for ${method.toUpperCase()} ${path} (operationId: ${operationId}). Use a custom namingStrategy or sourceName to disambiguate.`,
        );
      }
      const { argsSchema, bodyMediaType } = argsSchemaFor(operation);
      this.#tools.push({
        name,
        description: operation.summary || operation.description || `${method.toUpperCase()} ${path}`,
        argsSchema,
        config: { timeout },
        handler: createHandler(operation, baseUrl, bodyMediaType, headers, auth),
      });
      this.#toolNames.add(name);
    }
  }

  #toolName({ method, path, operationId }, options) {
    if (options.namingStrategy) {
      const name = options.namingStrategy(method, path, operationId);
      if (typeof name !== 'string' || name === '') {
        throw new TypeError(`namingStrategy must return a non-empty string (for ${method.toUpperCase()} ${path})`);
      }
      return name;
    }
    return options.sourceName ? `${options.sourceName}_${operationId}` : operationId;
  }
}

module.exports = { OpenApiToolLoader };
