// OpenAPI tool loading (1.U in docs/compatibility.md): OpenApiToolLoader, OpenApiSpecPoller, OpenApiSource
// and CatalogHandler against a real local HTTP server that serves the specs and the API
// the generated tools call.
import { describe, it, expect, afterEach, vi } from 'vitest';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import express from 'express';
import { createBroker, createToolRegistry, registerExpressRoutes } from '../index.mjs';
import { ROOT, runNode, waitFor } from './helpers/index.mjs';

const require = createRequire(import.meta.url);
const { OpenApiToolLoader } = require('../lib/openapi/openapi-tool-loader.js');
const { OpenApiSpecPoller } = require('../lib/openapi/openapi-spec-poller.js');
const { OpenApiSource } = require('../lib/openapi/openapi-source.js');
const { CatalogHandler } = require('../lib/openapi/catalog-handler.js');

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

// ---------------------------------------------------------------------------------------
// Cleanup: every server, poller, source and broker a test makes is closed after it.

const cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).toReversed()) await cleanup();
});

function track(thing) {
  cleanups.push(() => (typeof thing.dispose === 'function' ? thing.dispose() : undefined));
  return thing;
}

// A local API server. Routes are `"METHOD /path"` → responder; a responder is a function
// (request, res) or a static `{status, headers, body}`. `GET /openapi.json` serves
// `api.spec` unless routed otherwise. Every request is recorded.
async function startApi(spec) {
  const api = {
    spec,
    requests: [],
    routes: new Map(),
    origin: '',
    specUrl: '',
    route(key, responder) {
      api.routes.set(key, responder);
      return api;
    },
    requestsTo(pathname) {
      return api.requests.filter((r) => r.pathname === pathname);
    },
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url, 'http://localhost');
      const request = {
        method: req.method,
        url: req.url,
        pathname: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      api.requests.push(request);
      let responder = api.routes.get(`${req.method} ${url.pathname}`);
      if (responder === undefined && req.method === 'GET' && url.pathname === '/openapi.json') {
        responder = { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(api.spec) };
      }
      if (responder === undefined) responder = echo;
      if (typeof responder === 'function') {
        responder(request, res);
        return;
      }
      res.writeHead(responder.status ?? 200, responder.headers ?? {});
      res.end(responder.body ?? '');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.origin = `http://127.0.0.1:${server.address().port}`;
  api.specUrl = `${api.origin}/openapi.json`;
  cleanups.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return api;
}

// The default responder: what the server received, as JSON.
function echo(request, res) {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ method: request.method, url: request.url, body: request.body }));
}

function json(status, value, headers = {}) {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) };
}

function toolsByName(loader) {
  return Object.fromEntries(loader.getTools().map((tool) => [tool.name, tool]));
}

function registryWith(loader) {
  const registry = createToolRegistry();
  for (const tool of loader.getTools()) registry.register(tool);
  return registry;
}

const ctx = () => ({ sessionId: 's_test', callId: 'c_test', signal: new AbortController().signal });

const op = (operationId) => ({ operationId });

// Records the named events of an emitter as [name, ...args].
function record(target, names) {
  const events = [];
  for (const name of names) target.on(name, (...args) => events.push([name, ...args]));
  return events;
}

// A pet-store-like spec used by several suites.
function petSpec(extraPaths = {}) {
  return {
    openapi: '3.0.3',
    info: { title: 'pets', version: '1' },
    paths: {
      '/pets': {
        get: {
          operationId: 'listPets',
          summary: 'List pets',
          description: 'Returns every pet',
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer' } },
            { name: 'tags', in: 'query', schema: { type: 'array', items: { type: 'string' } } },
          ],
        },
        post: {
          operationId: 'createPet',
          description: 'Creates a pet',
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
        },
      },
      '/pets/{petId}': {
        parameters: [{ name: 'petId', in: 'path', required: true, schema: { type: 'string' } }],
        get: { operationId: 'getPet', summary: 'Get one pet' },
        delete: { operationId: 'deletePet' },
      },
      ...extraPaths,
    },
  };
}

// ---------------------------------------------------------------------------------------

describe('OpenApiToolLoader: tools from a spec', () => {
  it('names tools by operationId, or method and path when there is none', async () => {
    const loader = await OpenApiToolLoader.fromSpec(
      {
        paths: {
          '/users/{id}/posts': { get: {}, put: { operationId: 'replacePosts' } },
          '/a-b.c': { post: {} },
        },
      },
      { baseUrl: 'http://upstream.test' },
    );
    expect(loader.getTools().map((t) => t.name)).toEqual(['get__users__id__posts', 'replacePosts', 'post__a_b_c']);
    expect(loader.getToolNames()).toEqual(new Set(['get__users__id__posts', 'replacePosts', 'post__a_b_c']));
  });

  it('prefixes names with sourceName; a namingStrategy gets method, path and operationId', async () => {
    const spec = { paths: { '/x': { get: { operationId: 'readX' }, delete: {} } } };
    const prefixed = await OpenApiToolLoader.fromSpec(spec, { baseUrl: 'http://u.test', sourceName: 'svc' });
    expect([...prefixed.getToolNames()]).toEqual(['svc_readX', 'svc_delete__x']);

    const calls = [];
    const custom = await OpenApiToolLoader.fromSpec(spec, {
      baseUrl: 'http://u.test',
      sourceName: 'ignored',
      namingStrategy: (method, path, operationId) => {
        calls.push([method, path, operationId]);
        return `${method.toUpperCase()}:${path}`;
      },
    });
    expect([...custom.getToolNames()]).toEqual(['GET:/x', 'DELETE:/x']);
    expect(calls).toEqual([
      ['get', '/x', 'readX'],
      ['delete', '/x', 'delete__x'],
    ]);
  });

  it('rejects duplicate tool names with the original message', async () => {
    const spec = { paths: { '/a': { get: { operationId: 'same' } }, '/b': { post: { operationId: 'same' } } } };
    await expect(OpenApiToolLoader.fromSpec(spec, { baseUrl: 'http://u.test' })).rejects.toThrow(
      new Error(
        'Duplicate tool name "same" generated for POST /b (operationId: same). Use a custom namingStrategy or sourceName to disambiguate.',
      ),
    );
    await expect(
      OpenApiToolLoader.fromSpec(
        { paths: { '/a': { get: {} }, '/b': { get: {} } } },
        { baseUrl: 'http://u.test', namingStrategy: () => 'one' },
      ),
    ).rejects.toThrow(
      'Duplicate tool name "one" generated for GET /b (operationId: get__b). Use a custom namingStrategy or sourceName to disambiguate.',
    );
  });

  it('turns the seven HTTP methods into tools, in method order, and nothing else', async () => {
    const loader = await OpenApiToolLoader.fromSpec(
      {
        paths: {
          '/r': {
            options: op('o'),
            head: op('h'),
            patch: op('pa'),
            delete: op('d'),
            put: op('pu'),
            post: op('po'),
            get: op('g'),
            trace: op('t'),
            summary: 'not an operation',
            parameters: [],
          },
        },
      },
      { baseUrl: 'http://u.test' },
    );
    expect([...loader.getToolNames()]).toEqual(['g', 'po', 'pu', 'd', 'pa', 'h', 'o']);
  });

  it('includeOperations and excludeOperations filter by operationId (default ids too)', async () => {
    const spec = petSpec();
    const included = await OpenApiToolLoader.fromSpec(spec, { baseUrl: 'http://u.test', includeOperations: ['getPet', 'createPet'] });
    expect([...included.getToolNames()]).toEqual(['createPet', 'getPet']);
    const excluded = await OpenApiToolLoader.fromSpec(spec, { baseUrl: 'http://u.test', excludeOperations: ['listPets', 'deletePet'] });
    expect([...excluded.getToolNames()]).toEqual(['createPet', 'getPet']);
    const byDefaultId = await OpenApiToolLoader.fromSpec(
      { paths: { '/q': { get: {}, post: {} } } },
      { baseUrl: 'http://u.test', excludeOperations: ['get__q'] },
    );
    expect([...byDefaultId.getToolNames()]).toEqual(['post__q']);
  });

  it('describes a tool by its summary, else its description, else METHOD /path', async () => {
    const tools = toolsByName(await OpenApiToolLoader.fromSpec(petSpec(), { baseUrl: 'http://u.test' }));
    expect(tools.listPets.description).toBe('List pets');
    expect(tools.createPet.description).toBe('Creates a pet');
    expect(tools.deletePet.description).toBe('DELETE /pets/{petId}');
  });

  it('sets config.timeout to perToolDeadlineMs, default 30000', async () => {
    const byDefault = await OpenApiToolLoader.fromSpec(petSpec(), { baseUrl: 'http://u.test' });
    expect(byDefault.getTools().map((t) => t.config)).toEqual(Array.from({ length: 4 }, () => ({ timeout: 30000 })));
    const custom = await OpenApiToolLoader.fromSpec(petSpec(), { baseUrl: 'http://u.test', perToolDeadlineMs: 1234 });
    expect(custom.getTools()[0].config).toEqual({ timeout: 1234 });
  });

  it('getSpecHash is the SHA-256 of JSON.stringify(spec), for fromSpec and fromURL alike', async () => {
    const spec = petSpec();
    const api = await startApi(spec);
    const fromSpec = await OpenApiToolLoader.fromSpec(spec, { baseUrl: api.origin });
    const fromUrl = await OpenApiToolLoader.fromURL(api.specUrl);
    expect(fromSpec.getSpecHash()).toBe(sha256(JSON.stringify(spec)));
    expect(fromUrl.getSpecHash()).toBe(fromSpec.getSpecHash());
    const other = await OpenApiToolLoader.fromSpec(petSpec({ '/z': { get: {} } }), { baseUrl: api.origin });
    expect(other.getSpecHash()).not.toBe(fromSpec.getSpecHash());
  });

  it('getTools and getToolNames return copies', async () => {
    const loader = await OpenApiToolLoader.fromSpec(petSpec(), { baseUrl: 'http://u.test' });
    loader.getTools().pop();
    loader.getToolNames().clear();
    expect(loader.getTools()).toHaveLength(4);
    expect(loader.getToolNames().size).toBe(4);
  });

  it('rejects a spec that is not an object', async () => {
    await expect(OpenApiToolLoader.fromSpec(null)).rejects.toThrow(new TypeError('OpenAPI spec must be an object'));
    expect((await OpenApiToolLoader.fromSpec({ openapi: '3.0.0' })).getTools()).toEqual([]);
  });
});

describe('OpenApiToolLoader: argument schemas, checked by ToolRegistry.execute', () => {
  const typesSpec = {
    paths: {
      '/typed/{id}': {
        post: {
          operationId: 'typed',
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'integer' } },
            { name: 'ratio', in: 'query', schema: { type: 'number' } },
            { name: 'flag', in: 'query', schema: { type: 'boolean' } },
            { name: 'ids', in: 'query', schema: { type: 'array', items: { type: 'integer' } } },
            { name: 'meta', in: 'query', schema: { type: 'object' } },
            { name: 'color', in: 'query', schema: { type: 'string', enum: ['red', 'green'] } },
            { name: 'free', in: 'query', schema: { type: 'string' } },
            { name: 'anything', in: 'query' },
          ],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
        },
      },
      '/none': { get: { operationId: 'noParams' } },
      '/optional-body': {
        put: { operationId: 'optionalBody', requestBody: { content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
  };

  async function typedRegistry() {
    const api = await startApi();
    const loader = await OpenApiToolLoader.fromSpec(typesSpec, { baseUrl: api.origin });
    return { api, registry: registryWith(loader) };
  }

  const valid = { id: 7, ratio: 0.5, flag: true, ids: [1, 2], meta: { a: 1 }, color: 'red', free: 'x', anything: [null], body: {} };

  it('accepts well-typed arguments', async () => {
    const { registry } = await typedRegistry();
    const result = await registry.execute('typed', valid, ctx());
    expect(result.success).toBe(true);
    expect(result.value.method).toBe('POST');
  });

  it.each([
    ['integer', { id: 1.5 }, ['id'], 'expected int'],
    ['number', { ratio: '0.5' }, ['ratio'], 'expected number'],
    ['boolean', { flag: 'yes' }, ['flag'], 'expected boolean'],
    ['array item', { ids: [1, 'two'] }, ['ids', 1], 'expected number'],
    ['object → record', { meta: [1] }, ['meta'], 'expected record'],
    ['string enum', { color: 'blue' }, ['color'], 'expected one of "red"|"green"'],
    ['string', { free: 5 }, ['free'], 'expected string'],
    ['required body', { body: undefined }, ['body'], 'expected record'],
  ])('rejects a wrong %s', async (_label, change, path, expected) => {
    const { api, registry } = await typedRegistry();
    const result = await registry.execute('typed', { ...valid, ...change }, ctx());
    expect(result.success).toBe(false);
    expect(result.error.code).toBe('VALIDATION_ERROR');
    expect(result.error.message.startsWith('Invalid arguments: ')).toBe(true);
    const issues = JSON.parse(result.error.message.slice('Invalid arguments: '.length));
    expect(issues).toHaveLength(1);
    expect(issues[0].path).toEqual(path);
    expect(issues[0].message).toContain(expected);
    expect(api.requests).toHaveLength(0);
  });

  it('parameters are optional unless required; unknown keys are dropped', async () => {
    const { api, registry } = await typedRegistry();
    const missingId = await registry.execute('typed', { body: {} }, ctx());
    expect(missingId.success).toBe(false);
    expect(JSON.parse(missingId.error.message.slice('Invalid arguments: '.length))[0].path).toEqual(['id']);

    const minimal = await registry.execute('typed', { id: 3, body: { k: 1 }, extra: 'dropped' }, ctx());
    expect(minimal.success).toBe(true);
    expect(api.requests.at(-1).url).toBe('/typed/3');
    expect(api.requests.at(-1).body).toBe('{"k":1}');
  });

  it('an operation without parameters takes any record; an optional text body is a string', async () => {
    const { registry } = await typedRegistry();
    expect((await registry.execute('noParams', { whatever: 1 }, ctx())).success).toBe(true);
    const notRecord = await registry.execute('noParams', [1], ctx());
    expect(notRecord.error.code).toBe('VALIDATION_ERROR');
    expect((await registry.execute('optionalBody', {}, ctx())).success).toBe(true);
    const badBody = await registry.execute('optionalBody', { body: { not: 'text' } }, ctx());
    expect(badBody.error.code).toBe('VALIDATION_ERROR');
  });
});

describe('OpenApiToolLoader: the requests tools make', () => {
  const requestSpec = {
    paths: {
      '/items/{itemId}/parts/{part}': {
        parameters: [
          { name: 'itemId', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'part', in: 'path', required: true, schema: { type: 'integer' } },
        ],
        patch: {
          operationId: 'patchPart',
          parameters: [
            { name: 'filter', in: 'query', schema: { type: 'object' } },
            { name: 'ids', in: 'query', schema: { type: 'array', items: { type: 'integer' } } },
            { name: 'q', in: 'query', schema: { type: 'string' } },
            { name: 'X-Trace', in: 'header', schema: { type: 'string' } },
            { name: 'Authorization', in: 'header', schema: { type: 'string' } },
            { name: 'X-Api-Key', in: 'header', schema: { type: 'string' } },
          ],
          requestBody: { content: { 'application/json': { schema: { type: 'object' } } } },
        },
      },
      '/form': { post: { operationId: 'form', requestBody: { content: { 'application/x-www-form-urlencoded': {} } } } },
      '/multi': { post: { operationId: 'multi', requestBody: { content: { 'multipart/form-data': {} } } } },
      '/text': { post: { operationId: 'text', requestBody: { content: { 'text/plain': {} } } } },
      '/plain': { get: { operationId: 'plain' } },
    },
  };

  async function setup(options = {}, auth) {
    const api = await startApi();
    const loader = await OpenApiToolLoader.fromSpec(requestSpec, { baseUrl: `${api.origin}/base//`, ...options }, auth);
    return { api, registry: registryWith(loader) };
  }

  it('builds the URL: base without trailing slashes, encoded path params, query via URLSearchParams', async () => {
    const { api, registry } = await setup();
    const result = await registry.execute(
      'patchPart',
      { itemId: 'a b/c?', part: 2, filter: { x: [1] }, ids: [3, 4], q: 'h&m = ok' },
      ctx(),
    );
    expect(result.success).toBe(true);
    const request = api.requests.at(-1);
    expect(request.method).toBe('PATCH');
    expect(request.pathname).toBe('/base/items/a%20b%2Fc%3F/parts/2');
    expect(request.query).toEqual({ filter: '{"x":[1]}', ids: '[3,4]', q: 'h&m = ok' });
    expect(request.url.split('?')[1]).toBe(new URLSearchParams({ filter: '{"x":[1]}', ids: '[3,4]', q: 'h&m = ok' }).toString());
  });

  it('sends header params and loader headers; a JSON body as JSON with its Content-Type', async () => {
    const { api, registry } = await setup({ headers: { 'X-Static': 'yes' } });
    await registry.execute('patchPart', { itemId: 'i', part: 1, 'X-Trace': 't-1', body: { name: 'Rex', n: 2 } }, ctx());
    const request = api.requests.at(-1);
    expect(request.headers['x-trace']).toBe('t-1');
    expect(request.headers['x-static']).toBe('yes');
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request.body)).toEqual({ name: 'Rex', n: 2 });

    await registry.execute('patchPart', { itemId: 'i', part: 1 }, ctx());
    expect(api.requests.at(-1).headers['content-type']).toBeUndefined();
    expect(api.requests.at(-1).body).toBe('');
  });

  it('sends form, multipart and text bodies in their media types', async () => {
    const { api, registry } = await setup();
    await registry.execute('form', { body: { a: '1', b: 'x y' } }, ctx());
    let request = api.requests.at(-1);
    expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request.body).toBe('a=1&b=x+y');

    await registry.execute('multi', { body: { field: 'value' } }, ctx());
    request = api.requests.at(-1);
    expect(request.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(request.body).toContain('name="field"');
    expect(request.body).toContain('value');

    await registry.execute('text', { body: 'hello text' }, ctx());
    request = api.requests.at(-1);
    expect(request.headers['content-type']).toBe('text/plain');
    expect(request.body).toBe('hello text');
  });

  it.each([
    ['bearer', { type: 'bearer', token: 'tok' }, 'authorization', 'Bearer tok'],
    ['basic', { type: 'basic', token: 'dXNlcjpwdw==' }, 'authorization', 'Basic dXNlcjpwdw=='],
    ['api-key (default header)', { type: 'api-key', token: 'k1' }, 'x-api-key', 'k1'],
    ['api-key (own header)', { type: 'api-key', token: 'k2', header: 'X-Trace' }, 'x-trace', 'k2'],
  ])('auth %s sets its header, which header params cannot overwrite', async (_label, auth, header, value) => {
    const { api, registry } = await setup({}, auth);
    const args = { itemId: 'i', part: 1, Authorization: 'Bearer evil', 'X-Api-Key': 'evil', 'X-Trace': 'evil' };
    expect((await registry.execute('patchPart', args, ctx())).success).toBe(true);
    expect(api.requests.at(-1).headers[header]).toBe(value);
  });

  it('without auth, header params are sent as given', async () => {
    const { api, registry } = await setup();
    await registry.execute('patchPart', { itemId: 'i', part: 1, Authorization: 'Bearer mine' }, ctx());
    expect(api.requests.at(-1).headers.authorization).toBe('Bearer mine');
  });

  it('returns JSON for JSON content types and text otherwise', async () => {
    const { api, registry } = await setup();
    api.route('GET /base/plain', json(200, { ok: 1 }));
    expect((await registry.execute('plain', {}, ctx())).value).toEqual({ ok: 1 });
    api.route('GET /base/plain', { status: 200, headers: { 'content-type': 'application/problem+json' }, body: '[1,2]' });
    expect((await registry.execute('plain', {}, ctx())).value).toEqual([1, 2]);
    api.route('GET /base/plain', { status: 200, headers: { 'content-type': 'text/plain' }, body: '{"not":"parsed"}' });
    expect((await registry.execute('plain', {}, ctx())).value).toBe('{"not":"parsed"}');
  });

  it('a non-OK response throws HTTP <status> <statusText>: <body>', async () => {
    const { api, registry } = await setup();
    api.route('GET /base/plain', json(404, { error: 'no such thing' }));
    expect((await registry.execute('plain', {}, ctx())).error).toEqual({
      code: 'EXECUTION_ERROR',
      message: 'HTTP 404 Not Found: {"error":"no such thing"}',
    });
    api.route('GET /base/plain', { status: 500, headers: { 'content-type': 'text/plain' }, body: 'boom' });
    expect((await registry.execute('plain', {}, ctx())).error.message).toBe('HTTP 500 Internal Server Error: boom');
  });

  it('passes the tool context signal to fetch', async () => {
    const { api, registry } = await setup();
    api.route('GET /base/plain', () => {
      // Never answers: only the abort can end the call.
    });
    const controller = new AbortController();
    const pending = registry.execute('plain', {}, { ...ctx(), signal: controller.signal });
    await waitFor(() => api.requestsTo('/base/plain').length === 1, 5000, 'the request');
    controller.abort();
    const result = await pending;
    expect(result.success).toBe(false);
    expect(result.error.message).toMatch(/abort/i);
  });
});

const withServers = (url) => ({ servers: [{ url }], paths: { '/ping': { get: { operationId: 'ping' } } } });

// The URL the `ping` tool of `loader` requested.
async function pingPath(loader) {
  const registry = registryWith(loader);
  const result = await registry.execute('ping', {}, ctx());
  expect(result.success).toBe(true);
  return result.value.url;
}

describe('OpenApiToolLoader: base URL and fetching', () => {
  it('fromURL: an explicit baseUrl wins over the spec servers', async () => {
    const api = await startApi(withServers('http://wrong.invalid/x'));
    const loader = await OpenApiToolLoader.fromURL(api.specUrl, { baseUrl: `${api.origin}/explicit/` });
    expect(await pingPath(loader)).toBe('/explicit/ping');
  });

  it('fromURL: an absolute servers[0].url, without its query', async () => {
    const api = await startApi();
    api.spec = withServers(`${api.origin}/v2/?ignored=1`);
    expect(await pingPath(await OpenApiToolLoader.fromURL(api.specUrl))).toBe('/v2/ping');
  });

  it('fromURL: a relative servers[0].url is resolved against the spec URL', async () => {
    const api = await startApi(withServers('api/v1'));
    api.route('GET /specs/openapi.json', json(200, api.spec));
    expect(await pingPath(await OpenApiToolLoader.fromURL(`${api.origin}/specs/openapi.json`))).toBe('/specs/api/v1/ping');
    expect(await pingPath(await OpenApiToolLoader.fromURL(`${api.origin}/specs/openapi.json`, { baseUrl: '' }))).toBe(
      '/specs/api/v1/ping',
    );
  });

  it('fromURL: without servers, the spec URL origin', async () => {
    const api = await startApi({ paths: { '/ping': { get: { operationId: 'ping' } } } });
    api.route('GET /deep/spec.json', json(200, api.spec));
    expect(await pingPath(await OpenApiToolLoader.fromURL(`${api.origin}/deep/spec.json`))).toBe('/ping');
  });

  it('fromSpec: an absolute server is used; a relative one without baseUrl is an error', async () => {
    const api = await startApi();
    expect(await pingPath(await OpenApiToolLoader.fromSpec(withServers(`${api.origin}/abs`)))).toBe('/abs/ping');
    expect(await pingPath(await OpenApiToolLoader.fromSpec(withServers('/rel'), { baseUrl: api.origin }))).toBe('/ping');
    await expect(OpenApiToolLoader.fromSpec(withServers('/rel'))).rejects.toThrow(
      new Error(
        'Cannot resolve relative server URL "/rel" without a source URL. Use fromURL() or provide an explicit baseUrl option.',
      ),
    );
  });

  it('fromURL sends loader headers and auth when fetching the spec', async () => {
    const api = await startApi(petSpec());
    await OpenApiToolLoader.fromURL(api.specUrl, { headers: { 'X-Spec': 's' } }, { type: 'api-key', token: 'kk', header: 'X-Key' });
    const request = api.requestsTo('/openapi.json')[0];
    expect(request.headers['x-spec']).toBe('s');
    expect(request.headers['x-key']).toBe('kk');
  });

  it('fromURL: a non-OK response, a refused connection and a non-JSON body are clear errors', async () => {
    const api = await startApi(petSpec());
    api.route('GET /openapi.json', { status: 404, body: 'nope' });
    await expect(OpenApiToolLoader.fromURL(api.specUrl)).rejects.toThrow(
      new Error(`Failed to fetch OpenAPI spec from ${api.specUrl}: 404`),
    );
    api.route('GET /openapi.json', { status: 200, headers: { 'content-type': 'application/json' }, body: '{oops' });
    await expect(OpenApiToolLoader.fromURL(api.specUrl)).rejects.toThrow(`OpenAPI spec from ${api.specUrl} is not valid JSON`);

    // A port that was just listening and is now closed: the connection is refused.
    const closed = await startApi();
    const deadUrl = `${closed.origin}/openapi.json`;
    const closeIt = cleanups.pop();
    await closeIt();
    await expect(OpenApiToolLoader.fromURL(deadUrl)).rejects.toThrow(
      new Error(`Failed to fetch OpenAPI spec from ${deadUrl}: connect ECONNREFUSED ${deadUrl.slice('http://'.length, -'/openapi.json'.length)}`),
    );
  });
});

// ---------------------------------------------------------------------------------------

// A poller without retries unless asked, disposed after the test.
function trackedPoller(config) {
  return track(new OpenApiSpecPoller({ retry: { maxRetries: 0 }, ...config }));
}

describe('OpenApiSpecPoller', () => {
  const POLLER_EVENTS = ['changed', 'unchanged', 'pollError', 'unhealthy', 'recovered'];

  it('reports the first body as changed, with its SHA-256; the same body again as unchanged', async () => {
    const api = await startApi({ v: 1 });
    // Validators that content-hash mode must not send back.
    api.route('GET /openapi.json', (_request, res) => {
      res.writeHead(200, { 'content-type': 'application/json', etag: '"fixed"', 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' });
      res.end(JSON.stringify(api.spec));
    });
    const p = trackedPoller({ url: api.specUrl, changeDetection: 'content-hash' });
    const events = record(p, POLLER_EVENTS);
    expect(p.getHash()).toBeNull();
    await p.poll();
    const body = JSON.stringify({ v: 1 });
    expect(events).toEqual([['changed', body, sha256(body)]]);
    expect(p.getHash()).toBe(sha256(body));
    await p.poll();
    expect(events.slice(1)).toEqual([['unchanged']]);
    api.spec = { v: 2 };
    await p.poll();
    expect(events.slice(2)).toEqual([['changed', JSON.stringify({ v: 2 }), sha256(JSON.stringify({ v: 2 }))]]);
    expect(api.requests).toHaveLength(3);
    for (const request of api.requests) {
      expect(request.headers['if-none-match']).toBeUndefined();
      expect(request.headers['if-modified-since']).toBeUndefined();
    }
  });

  it.each(['auto', 'etag'])('%s: sends If-None-Match / If-Modified-Since and takes 304 as unchanged', async (mode) => {
    const api = await startApi();
    const lastModified = 'Wed, 21 Oct 2015 07:28:00 GMT';
    api.route('GET /openapi.json', (request, res) => {
      if (request.headers['if-none-match'] === '"v1"') {
        res.writeHead(304);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', etag: '"v1"', 'last-modified': lastModified });
      res.end('{"v":1}');
    });
    const p = trackedPoller({ url: api.specUrl, changeDetection: mode, headers: { 'X-Custom': 'c' } });
    const events = record(p, POLLER_EVENTS);
    await p.poll();
    await p.poll();
    expect(events.map((e) => e[0])).toEqual(['changed', 'unchanged']);
    const [first, second] = api.requests;
    expect(first.headers['if-none-match']).toBeUndefined();
    expect(first.headers['x-custom']).toBe('c');
    expect(second.headers['if-none-match']).toBe('"v1"');
    expect(second.headers['if-modified-since']).toBe(lastModified);
    expect(second.headers['x-custom']).toBe('c');
  });

  it('a non-OK response is a pollError "HTTP <status>: <statusText>" after the retries', async () => {
    const api = await startApi();
    api.route('GET /openapi.json', { status: 503 });
    const p = trackedPoller({ url: api.specUrl, retry: { maxRetries: 2, initialDelayMs: 1, maxDelayMs: 2 } });
    const events = record(p, POLLER_EVENTS);
    await p.poll();
    expect(api.requests).toHaveLength(3);
    expect(events).toHaveLength(1);
    expect(events[0][0]).toBe('pollError');
    expect(events[0][1]).toBeInstanceOf(Error);
    expect(events[0][1].message).toBe('HTTP 503: Service Unavailable');
    expect(p.getConsecutiveFailures()).toBe(1);
  });

  it('waits min(initialDelayMs * backoffMultiplier^attempt, maxDelayMs) between retries', async () => {
    const api = await startApi();
    api.route('GET /openapi.json', { status: 500 });
    const delays = new Set([11, 33, 50]);
    const seen = [];
    const realSetTimeout = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation((fn, ms, ...rest) => {
      if (delays.has(ms)) seen.push(ms);
      return realSetTimeout(fn, ms, ...rest);
    });
    try {
      const p = trackedPoller({ url: api.specUrl, retry: { maxRetries: 4, initialDelayMs: 11, backoffMultiplier: 3, maxDelayMs: 50 } });
      await p.poll();
    } finally {
      spy.mockRestore();
    }
    expect(api.requests).toHaveLength(5);
    expect(seen).toEqual([11, 33, 50, 50]);
  });

  it('emits unhealthy once at the threshold, recovered on the next success', async () => {
    const api = await startApi({ v: 1 });
    api.route('GET /openapi.json', { status: 500 });
    const p = trackedPoller({ url: api.specUrl, unhealthyThreshold: 2 });
    const events = record(p, POLLER_EVENTS);
    await p.poll();
    expect(events.map((e) => e[0])).toEqual(['pollError']);
    await p.poll();
    await p.poll();
    expect(events.map((e) => e[0])).toEqual(['pollError', 'pollError', 'unhealthy', 'pollError']);
    expect(events[2]).toEqual(['unhealthy', 2]);
    expect(p.getConsecutiveFailures()).toBe(3);

    api.routes.delete('GET /openapi.json');
    await p.poll();
    await p.poll();
    expect(events.slice(4).map((e) => e[0])).toEqual(['changed', 'recovered', 'unchanged']);
    expect(p.getConsecutiveFailures()).toBe(0);
  });

  it('a fetch that outlasts fetchTimeoutMs fails the attempt', async () => {
    const api = await startApi();
    api.route('GET /openapi.json', () => {
      // Never answers.
    });
    const p = trackedPoller({ url: api.specUrl, fetchTimeoutMs: 30 });
    const events = record(p, ['pollError']);
    await p.poll();
    expect(events[0][1].message).toBe(`Timed out after 30ms fetching OpenAPI spec from ${api.specUrl}`);
  });

  it('start() polls at once and every intervalMs; stop() ends polling; dispose() drops listeners', async () => {
    const api = await startApi({ v: 1 });
    const p = trackedPoller({ url: api.specUrl, intervalMs: 10 });
    const events = record(p, ['changed', 'unchanged']);
    p.start();
    p.start();
    await waitFor(() => events.length >= 3, 5000, 'three polls');
    expect(events[0][0]).toBe('changed');
    expect(events.slice(1, 3).map((e) => e[0])).toEqual(['unchanged', 'unchanged']);
    p.stop();
    await new Promise((resolve) => setTimeout(resolve, 30));
    const count = api.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(api.requests.length).toBe(count);
    await p.poll();
    expect(api.requests.length).toBe(count);

    p.dispose();
    expect(p.listenerCount('changed')).toBe(0);
  });

  it('rejects bad settings with clear errors', () => {
    expect(() => new OpenApiSpecPoller({})).toThrow(new TypeError('OpenApiSpecPoller config.url must be a non-empty string'));
    expect(() => new OpenApiSpecPoller({ url: 'http://x.test', changeDetection: 'md5' })).toThrow(
      "changeDetection must be one of 'auto', 'etag', 'content-hash'",
    );
    expect(() => new OpenApiSpecPoller({ url: 'http://x.test', intervalMs: 0 })).toThrow('intervalMs must be a positive number');
  });

  it('does not keep Node alive', async () => {
    const file = JSON.stringify(`${ROOT}/lib/openapi/openapi-spec-poller.js`);
    const run = await runNode(
      `
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const { OpenApiSpecPoller } = require(${file});
      // Port 1 refuses at once; the poller then waits a minute to retry, and an hour to poll again.
      const poller = new OpenApiSpecPoller({
        url: 'http://127.0.0.1:1/openapi.json',
        intervalMs: 3600000,
        retry: { initialDelayMs: 60000 },
      });
      poller.on('pollError', () => {});
      poller.start();
      console.log('started');
      `,
      { timeoutMs: 8000 },
    );
    expect(run.killed, `child was still alive; stderr: ${run.stderr}`).toBe(false);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('started\n');
  });
});

// ---------------------------------------------------------------------------------------

// A source (polling every minute unless asked) over `registry`, disposed after the test.
function trackedSource(config, registry = createToolRegistry()) {
  return { registry, source: track(new OpenApiSource(registry, { intervalMs: 60000, ...config })) };
}

// A source polling every 10 ms without retries, unhealthy after `threshold` failures.
const fastPolling = (api, threshold) => ({
  name: 'svc',
  url: api.specUrl,
  baseUrl: api.origin,
  intervalMs: 10,
  unhealthyThreshold: threshold,
  retry: { maxRetries: 0 },
});

describe('OpenApiSource', () => {
  const SOURCE_EVENTS = ['toolsUpdated', 'catalogChanged', 'unhealthy', 'recovered', 'error'];

  it('start(): registers the spec tools under the source name, then polls (the first poll re-syncs)', async () => {
    const api = await startApi(petSpec());
    const { registry, source: s } = trackedSource({ name: 'pets', url: api.specUrl, baseUrl: api.origin });
    const events = record(s, SOURCE_EVENTS);
    expect(s.getStats()).toEqual({ toolCount: 0, lastUpdate: '', specHash: '', pollHealth: 'unknown' });
    expect(s.getName()).toBe('pets');

    await s.start();
    const names = ['pets_listPets', 'pets_createPet', 'pets_getPet', 'pets_deletePet'];
    const hash = sha256(JSON.stringify(petSpec()));
    expect(registry.list()).toEqual(names);
    expect(s.getToolNames()).toEqual(new Set(names));
    expect(events.slice(0, 2)).toEqual([
      ['toolsUpdated', { added: names, removed: [], updated: [] }],
      ['catalogChanged', { version: hash, addedActions: names, removedActions: [] }],
    ]);
    const stats = s.getStats();
    expect(stats).toMatchObject({ toolCount: 4, specHash: hash, pollHealth: 'healthy' });
    expect(new Date(stats.lastUpdate).toISOString()).toBe(stats.lastUpdate);

    await waitFor(() => events.length === 3, 5000, 'the first poll');
    expect(events[2]).toEqual(['toolsUpdated', { added: [], removed: [], updated: names }]);
    expect(api.requestsTo('/openapi.json')).toHaveLength(2);

    const result = await registry.execute('pets_getPet', { petId: 'p1' }, ctx());
    expect(result.value).toEqual({ method: 'GET', url: '/pets/p1', body: '' });
  });

  it('refresh(): adds new tools, removes vanished ones, and reports both', async () => {
    const api = await startApi(petSpec());
    const { registry, source: s } = trackedSource({ name: 'svc', url: api.specUrl, baseUrl: api.origin });
    await s.start();
    const events = record(s, SOURCE_EVENTS);
    await waitFor(() => events.length === 1, 5000, 'the first poll');
    events.length = 0;

    registry.register({ name: 'unrelated', handler: () => 1 });
    const next = petSpec({ '/owners': { get: { operationId: 'listOwners' } } });
    delete next.paths['/pets/{petId}'].delete;
    api.spec = next;
    await s.refresh();

    const expectedNames = ['svc_listPets', 'svc_createPet', 'svc_getPet', 'svc_listOwners'];
    expect(events).toEqual([
      ['toolsUpdated', { added: ['svc_listOwners'], removed: ['svc_deletePet'], updated: ['svc_listPets', 'svc_createPet', 'svc_getPet'] }],
      ['catalogChanged', { version: sha256(JSON.stringify(next)), addedActions: ['svc_listOwners'], removedActions: ['svc_deletePet'] }],
    ]);
    expect(registry.has('svc_deletePet')).toBe(false);
    expect(registry.has('unrelated')).toBe(true);
    expect(s.getToolNames()).toEqual(new Set(expectedNames));
    expect(s.getStats().toolCount).toBe(4);
    expect(s.getStats().specHash).toBe(sha256(JSON.stringify(next)));
  });

  it('follows spec changes found by polling', async () => {
    const api = await startApi(petSpec());
    const { registry, source: s } = trackedSource({ name: 'svc', url: api.specUrl, baseUrl: api.origin, intervalMs: 10 });
    const catalog = record(s, ['catalogChanged']);
    await s.start();
    api.spec = { paths: { '/only': { get: { operationId: 'only' } } } };
    await waitFor(() => catalog.length === 2, 5000, 'the change');
    expect(catalog[1][1]).toEqual({
      version: sha256(JSON.stringify(api.spec)),
      addedActions: ['svc_only'],
      removedActions: ['svc_listPets', 'svc_createPet', 'svc_getPet', 'svc_deletePet'],
    });
    expect(registry.list()).toEqual(['svc_only']);
    expect((await registry.execute('svc_only', {}, ctx())).value.url).toBe('/only');
  });

  it('replaces a tool of the same name that was already registered', async () => {
    const api = await startApi(petSpec());
    const registry = createToolRegistry();
    registry.register({ name: 'svc_getPet', description: 'old', handler: () => 'old' });
    const { source: s } = trackedSource({ name: 'svc', url: api.specUrl, baseUrl: api.origin }, registry);
    await s.start();
    expect(registry.get('svc_getPet').description).toBe('Get one pet');
    expect((await registry.execute('svc_getPet', { petId: 'x' }, ctx())).value.url).toBe('/pets/x');
  });

  it('works with a registry that has only register, unregister and has', async () => {
    const api = await startApi(petSpec());
    const tools = new Map([['svc_getPet', { name: 'svc_getPet' }]]);
    const registry = {
      register: (def) => {
        if (tools.has(def.name)) throw new Error('taken');
        tools.set(def.name, def);
      },
      unregister: (name) => tools.delete(name),
      has: (name) => tools.has(name),
    };
    const { source: s } = trackedSource({ name: 'svc', url: api.specUrl, baseUrl: api.origin }, registry);
    await s.start();
    expect([...tools.keys()].toSorted()).toEqual(['svc_createPet', 'svc_deletePet', 'svc_getPet', 'svc_listPets']);
    expect(typeof tools.get('svc_getPet').handler).toBe('function');
  });

  it('passes loaderOptions and auth to the loader; the source name always prefixes', async () => {
    const api = await startApi(petSpec());
    const { registry, source: s } = trackedSource({
      name: 'svc',
      url: api.specUrl,
      baseUrl: `${api.origin}/up`,
      loaderOptions: { sourceName: 'other', includeOperations: ['getPet'], headers: { 'X-L': 'l' } },
      auth: { type: 'bearer', token: 'secret' },
    });
    await s.start();
    expect(registry.list()).toEqual(['svc_getPet']);
    await registry.execute('svc_getPet', { petId: '1' }, ctx());
    const request = api.requests.at(-1);
    expect(request.pathname).toBe('/up/pets/1');
    expect(request.headers.authorization).toBe('Bearer secret');
    expect(request.headers['x-l']).toBe('l');
    expect(api.requestsTo('/openapi.json')[0].headers.authorization).toBe('Bearer secret');
  });

  it('accepts (config, registry) as well as the original (registry, config)', async () => {
    const api = await startApi(petSpec());
    const registry = createToolRegistry();
    const s = track(new OpenApiSource({ name: 'rev', url: api.specUrl, baseUrl: api.origin, intervalMs: 60000 }, registry));
    await s.start();
    expect(registry.size).toBe(4);
    expect(() => new OpenApiSource({ name: 'x', url: 'http://x.test' }, {})).toThrow(
      'OpenApiSource needs a tool registry (an object with register, unregister and has)',
    );
    expect(() => new OpenApiSource(registry, { url: 'http://x.test' })).toThrow('OpenApiSource config.name must be a non-empty string');
    expect(() => new OpenApiSource(registry, { name: 'x' })).toThrow('OpenApiSource config.url must be a non-empty string');
    expect(() => new OpenApiSource(registry, { name: 'x', url: 'http://x.test', intervalMs: -1 })).toThrow(
      'intervalMs must be a positive number',
    );
  });

  it('a failed first load rejects start() and does not poll', async () => {
    const api = await startApi(petSpec());
    api.route('GET /openapi.json', { status: 500 });
    const { registry, source: s } = trackedSource({ name: 'svc', url: api.specUrl, baseUrl: api.origin, intervalMs: 10 });
    await expect(s.start()).rejects.toThrow(new Error(`Failed to fetch OpenAPI spec from ${api.specUrl}: 500`));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(api.requests).toHaveLength(1);
    expect(registry.size).toBe(0);
    expect(s.getStats().pollHealth).toBe('unknown');
  });

  it('poll failures: error events, unhealthy and recovered, reflected in pollHealth', async () => {
    const api = await startApi(petSpec());
    const { source: s } = trackedSource(fastPolling(api, 2));
    const events = record(s, SOURCE_EVENTS);
    await s.start();
    // The first poll succeeds, so recovery later finds the spec unchanged.
    await waitFor(() => events.filter((e) => e[0] === 'toolsUpdated').length === 2, 5000, 'the first poll');
    api.route('GET /openapi.json', { status: 500 });
    await waitFor(() => events.some((e) => e[0] === 'unhealthy'), 5000, 'unhealthy');
    const errors = events.filter((e) => e[0] === 'error');
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors[0][1].message).toBe('HTTP 500: Internal Server Error');
    expect(events.find((e) => e[0] === 'unhealthy')[1]).toBe(2);
    expect(s.getStats().pollHealth).toBe('unhealthy');

    api.routes.delete('GET /openapi.json');
    await waitFor(() => events.some((e) => e[0] === 'recovered'), 5000, 'recovered');
    expect(s.getStats().pollHealth).toBe('healthy');
    expect(events.filter((e) => e[0] === 'unhealthy')).toHaveLength(1);
    expect(events.filter((e) => e[0] === 'toolsUpdated')).toHaveLength(2);
  });

  it("without an 'error' listener, background failures neither throw out nor stop the source", async () => {
    const api = await startApi(petSpec());
    const { source: s } = trackedSource(fastPolling(api, 1));
    const events = record(s, ['unhealthy', 'recovered']);
    await s.start();
    api.route('GET /openapi.json', { status: 200, headers: { 'content-type': 'application/json' }, body: 'not json' });
    await waitFor(() => api.requestsTo('/openapi.json').length >= 4, 5000, 'polls of the bad spec');
    api.route('GET /openapi.json', { status: 500 });
    await waitFor(() => events.length === 1, 5000, 'unhealthy');
    api.routes.delete('GET /openapi.json');
    await waitFor(() => events.length === 2, 5000, 'recovered');
    expect(events.map((e) => e[0])).toEqual(['unhealthy', 'recovered']);
    expect(() => s.emit('error', new Error('direct'))).toThrow('direct');
  });

  it('a changed spec that cannot be loaded is an error event; the tools stay', async () => {
    const api = await startApi(petSpec());
    const { registry, source: s } = trackedSource({ name: 'svc', url: api.specUrl, baseUrl: api.origin, intervalMs: 10 });
    const errors = record(s, ['error']);
    await s.start();
    api.route('GET /openapi.json', { status: 200, headers: { 'content-type': 'application/json' }, body: '{broken' });
    await waitFor(() => errors.length >= 1, 5000, 'the error');
    expect(errors[0][1].message).toMatch(new RegExp(`^OpenAPI spec from ${api.specUrl} is not valid JSON: `));
    expect(registry.size).toBe(4);
  });

  it('dispose(): stops polling, drops listeners, and start()/refresh() then reject', async () => {
    const api = await startApi(petSpec());
    const { source: s } = trackedSource({ name: 'svc', url: api.specUrl, baseUrl: api.origin, intervalMs: 10 });
    s.on('toolsUpdated', () => {});
    await s.start();
    await waitFor(() => api.requests.length >= 3, 5000, 'polling');
    s.dispose();
    s.dispose();
    expect(s.listenerCount('toolsUpdated')).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const count = api.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(api.requests.length).toBe(count);
    await expect(s.start()).rejects.toThrow(new Error('OpenApiSource is disposed'));
    await expect(s.refresh()).rejects.toThrow(new Error('OpenApiSource is disposed'));
    expect(() => s.stop()).not.toThrow();
    expect(s.getStats().toolCount).toBe(4);
  });

  it('stop() pauses polling; start() resumes it', async () => {
    const api = await startApi(petSpec());
    const { source: s } = trackedSource({ name: 'svc', url: api.specUrl, baseUrl: api.origin, intervalMs: 10 });
    await s.start();
    await waitFor(() => api.requests.length >= 3, 5000, 'polling');
    s.stop();
    await new Promise((resolve) => setTimeout(resolve, 30));
    const count = api.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(api.requests.length).toBe(count);
    await s.start();
    await waitFor(() => api.requests.length >= count + 3, 5000, 'polling again');
  });
});

// ---------------------------------------------------------------------------------------

// A registry with a local tool and the tools of two sources (loaded, not polling).
async function twoSources() {
  const api = await startApi(petSpec());
  api.route('GET /other.json', json(200, { paths: { '/o': { get: { operationId: 'o', summary: 'The O' } } } }));
  const registry = createToolRegistry();
  registry.register({ name: 'local', description: 'A local tool', handler: () => 1 });
  const pets = track(new OpenApiSource(registry, { name: 'pets', url: api.specUrl, baseUrl: api.origin, intervalMs: 60000 }));
  const other = track(
    new OpenApiSource(registry, { name: 'other', url: `${api.origin}/other.json`, baseUrl: api.origin, intervalMs: 60000 }),
  );
  await pets.refresh();
  await other.refresh();
  return { registry, sources: [pets, other] };
}

describe('CatalogHandler', () => {
  it('buildCatalog: actions from the registry, services from the sources, version from their hashes', async () => {
    const { registry, sources } = await twoSources();
    const handler = new CatalogHandler(registry, sources);
    const catalog = handler.buildCatalog();
    expect(catalog.actions).toEqual([
      { name: 'local', description: 'A local tool', service: 'default' },
      { name: 'pets_listPets', description: 'List pets', service: 'pets' },
      { name: 'pets_createPet', description: 'Creates a pet', service: 'pets' },
      { name: 'pets_getPet', description: 'Get one pet', service: 'pets' },
      { name: 'pets_deletePet', description: 'DELETE /pets/{petId}', service: 'pets' },
      { name: 'other_o', description: 'The O', service: 'other' },
    ]);
    const [petStats, otherStats] = sources.map((s) => s.getStats());
    expect(catalog.services).toEqual([
      { name: 'pets', specUrl: '', lastUpdated: petStats.lastUpdate, actionCount: 4 },
      { name: 'other', specUrl: '', lastUpdated: otherStats.lastUpdate, actionCount: 1 },
    ]);
    expect(catalog.version).toBe([petStats.specHash, otherStats.specHash].toSorted().join(':'));
    expect(new CatalogHandler(registry, sources.toReversed()).buildCatalog().version).toBe(catalog.version);
  });

  it("with no sources, every action is 'default' and the version is 'empty'", () => {
    const registry = createToolRegistry();
    registry.register({ name: 'x', handler: () => 1 });
    expect(new CatalogHandler(registry, []).buildCatalog()).toEqual({
      actions: [{ name: 'x', description: undefined, service: 'default' }],
      services: [],
      version: 'empty',
    });
  });

  it('reads the sources array at every call', async () => {
    const { registry, sources } = await twoSources();
    const list = [];
    const handler = new CatalogHandler(registry, list);
    expect(handler.buildCatalog().services).toEqual([]);
    list.push(sources[1]);
    expect(handler.buildCatalog().services.map((s) => s.name)).toEqual(['other']);
  });

  it('getRoutes: GET /code/actions answers 200 with the catalog', async () => {
    const { registry, sources } = await twoSources();
    const handler = new CatalogHandler(registry, sources);
    const routes = handler.getRoutes();
    expect(routes.map(({ method, path }) => ({ method, path }))).toEqual([{ method: 'GET', path: '/code/actions' }]);
    const res = {
      statusCode: undefined,
      body: undefined,
      status(code) {
        res.statusCode = code;
        return res;
      },
      json(data) {
        res.body = data;
      },
      setHeader() {
        return res;
      },
    };
    await routes[0].handler({ method: 'GET', path: '/code/actions', params: {}, query: {}, headers: {} }, res);
    expect(res.statusCode).toBe(200);
    expect(res.body).toEqual(handler.buildCatalog());
  });

  it('mounts with registerExpressRoutes and serves over HTTP', async () => {
    const { registry, sources } = await twoSources();
    const handler = new CatalogHandler(registry, sources);
    const app = express();
    registerExpressRoutes(app, handler);
    const server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    cleanups.push(
      () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    const response = await fetch(`http://127.0.0.1:${server.address().port}/code/actions`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(JSON.parse(JSON.stringify(handler.buildCatalog())));
  });
});

// ---------------------------------------------------------------------------------------

describe('end to end: a script calls an OpenAPI tool through the broker', () => {
  it('callTool reaches the upstream API and returns its JSON', async () => {
    const api = await startApi(petSpec());
    api.route('GET /pets/rex', json(200, { id: 'rex', kind: 'dog' }));
    api.route('GET /pets/nope', json(404, { error: 'missing' }));
    const loader = await OpenApiToolLoader.fromURL(api.specUrl, { sourceName: 'pets' }, { type: 'bearer', token: 't0k' });
    const broker = track(createBroker());
    for (const def of loader.getTools()) broker.tool(def.name, def);

    const result = await broker.execute(
      "const pet = await callTool('pets_getPet', {petId: 'rex'}); const list = await callTool('pets_listPets', {limit: 2}); return {pet, url: list.url};",
    );
    expect(result.success).toBe(true);
    expect(result.value).toEqual({ pet: { id: 'rex', kind: 'dog' }, url: '/pets?limit=2' });
    expect(api.requestsTo('/pets/rex')[0].headers.authorization).toBe('Bearer t0k');

    const failed = await broker.execute("return await callTool('pets_getPet', {petId: 'nope'})");
    expect(failed.success).toBe(false);
    expect(failed.error.message).toContain('HTTP 404 Not Found: {"error":"missing"}');
  });
});
