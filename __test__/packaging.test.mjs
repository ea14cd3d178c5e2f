// What ships: the entry points and their declarations agree, the tarball holds the runtime
// files and nothing else, the platform package has napi-rs's shape, the addon exports nothing
// but its N-API entry point, and the engine binary sits next to it, executable.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const platformDir = path.join(ROOT, 'npm', 'linux-x64-gnu');
const platformPkg = JSON.parse(fs.readFileSync(path.join(platformDir, 'package.json'), 'utf8'));
const ADDON = `${rootPkg.napi.binaryName}.linux-x64-gnu.node`;
const ENGINE = 'enclave-engine';

// 1.A in docs/compatibility.md: the original's value exports and type exports.
const ORIGINAL_VALUES = [
  'Broker', 'createBroker', 'ToolRegistry', 'createToolRegistry', 'BrokerSession', 'createBrokerSession',
  'SessionManager', 'createSessionManager', 'SessionHandler', 'createSessionHandler', 'registerExpressRoutes',
  'createExpressRouter', 'EventFilter', 'createEventFilter', 'createTypeFilter', 'createContentFilter',
  'OpenApiSpecPoller', 'OpenApiToolLoader', 'OpenApiSource', 'CatalogHandler',
];
const ORIGINAL_TYPES = [
  'BrokerConfig', 'ExecuteOptions', 'ToolDefinition', 'ToolHandler', 'ToolContext', 'ToolValidationResult',
  'ToolExecutionResult', 'BrokerSessionConfig', 'SessionManagerConfig', 'SessionInfo', 'CreateSessionResult',
  'SessionHandlerConfig', 'RouteHandler', 'BrokerRequest', 'BrokerResponse', 'CreateSessionRequest',
  'SessionInfoResponse', 'ListSessionsResponse', 'ErrorResponse', 'StreamOptions', 'EventFilterOptions',
  'OpenApiPollerConfig', 'ChangeDetectionMode', 'PollerRetryConfig', 'OpenApiPollerEvents', 'LoaderOptions',
  'UpstreamAuth', 'OpenApiSourceConfig', 'OpenApiSourceStats', 'ToolsUpdatedEvent', 'SourceHealthStatus',
  'CatalogAction', 'CatalogService', 'CatalogResponse',
];
// Seed-API value exports added on top of the original's (C1 in docs/compatibility.md).
const ADDED = ['createSession', 'EnclaveBroker', 'ToolRouter', 'AccessController', 'RateLimiter', 'RuntimeWorker', 'createRuntimeWorker'];

// Public members of the JS classes that the original keeps private (so they are not declared).
const UNDECLARED_INTERNALS = {
  EventFilter: [
    'config', 'onError', 'alwaysAllow', 'compiledRegexes', 'matchesAnyRule', 'matchesRule', 'matchesTypeFilter',
    'matchesContentFilter', 'matchesPattern', 'getFieldValue', 'stringify', 'matchRegex', 'compilePatterns',
  ],
  SessionHandler: [
    'broker', 'cors', 'allowedOrigins', 'addCorsHeaders', 'resolveFromSeq', 'sessionToInfo',
    'sessionInfoToResponse', 'writeEvent', 'sendError',
  ],
};

// index.d.ts through the type checker: every export, split into values and type-only names,
// and for each class the names of its instance members.
function readDeclarations() {
  const file = path.join(ROOT, 'index.d.ts');
  const program = ts.createProgram({
    rootNames: [file],
    options: { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [] },
  });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(file));
  const values = [];
  const typesOnly = [];
  const classMembers = {};
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (symbol.flags & ts.SymbolFlags.Value) values.push(exported.name);
    else typesOnly.push(exported.name);
    if (symbol.flags & ts.SymbolFlags.Class) {
      const instance = checker.getDeclaredTypeOfSymbol(symbol);
      classMembers[exported.name] = checker.getPropertiesOfType(instance).map((p) => p.name);
    }
  }
  return { values: values.toSorted(), typesOnly: typesOnly.toSorted(), classMembers };
}

// Own and inherited public member names of an object (no constructor, no symbols, no `_x`/`#x`).
function publicMembers(object) {
  const names = new Set();
  for (let o = object; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (key !== 'constructor' && !key.startsWith('_')) names.add(key);
    }
  }
  return [...names].toSorted();
}

describe('entry points and declarations', () => {
  let cjs;
  let esm;
  let declared;
  const disposables = [];

  beforeAll(async () => {
    cjs = require('../index.js');
    esm = await import('../index.mjs');
    declared = readDeclarations();
  }, 120000);

  afterAll(async () => {
    for (const d of disposables) await d.dispose();
  });

  it('index.js and index.mjs export the same names, each the same object', () => {
    // In plain Node: vitest's module runner wraps CommonJS modules it imports.
    const probe = `
      import { createRequire } from 'node:module';
      import * as esm from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'index.mjs')).href)};
      const cjs = createRequire(import.meta.url)(${JSON.stringify(path.join(ROOT, 'index.js'))});
      const names = Object.keys(esm).filter((n) => n !== 'default');
      console.log(JSON.stringify({
        cjs: Object.keys(cjs),
        esm: names,
        different: names.filter((n) => esm[n] !== cjs[n]),
        defaultIsModule: esm.default === cjs,
      }));
      process.exit(0);
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: ROOT, encoding: 'utf8', timeout: 60000 });
    const result = JSON.parse(out.trim().split('\n').pop());
    const names = result.cjs.toSorted();
    expect(result.esm.toSorted()).toEqual(names);
    expect(result.different).toEqual([]);
    expect(result.defaultIsModule).toBe(true);
    // The same list as this process sees.
    expect(Object.keys(esm).filter((n) => n !== 'default').toSorted()).toEqual(names);
    expect(Object.keys(cjs).toSorted()).toEqual(names);
  });

  it('index.d.ts declares exactly those names as values', () => {
    expect(declared.values).toEqual(Object.keys(cjs).toSorted());
  });

  it('covers the original surface, plus the seed API additions', () => {
    const exported = Object.keys(cjs);
    expect(ORIGINAL_VALUES.filter((n) => !exported.includes(n))).toEqual([]);
    expect(exported.filter((n) => !ORIGINAL_VALUES.includes(n))).toEqual(ADDED);
    for (const name of ORIGINAL_TYPES) expect(declared.typesOnly, name).toContain(name);
  });

  it('declares every value with the kind it has at run time', () => {
    for (const name of declared.values) expect(typeof cjs[name], name).toBe('function');
    for (const name of Object.keys(declared.classMembers)) {
      expect(Function.prototype.toString.call(cjs[name]), name).toMatch(/^class\b/);
    }
    for (const name of declared.values.filter((n) => !(n in declared.classMembers))) {
      expect(Function.prototype.toString.call(cjs[name]), name).not.toMatch(/^class\b/);
    }
  });

  it("declares each class's public members, and only members the objects have", async () => {
    const { Broker, EnclaveBroker, ToolRegistry, BrokerSession, SessionManager, SessionHandler, EventFilter } = cjs;
    const { ToolRouter, AccessController, RateLimiter } = cjs;
    const { OpenApiSpecPoller, OpenApiToolLoader, OpenApiSource, CatalogHandler } = cjs;
    const { RuntimeWorker } = cjs;
    const broker = new Broker();
    const enclaveBroker = new EnclaveBroker();
    const registry = new ToolRegistry();
    const manager = new SessionManager(registry);
    const session = new BrokerSession(registry);
    disposables.push(broker, enclaveBroker, manager, session);
    const instances = {
      Broker: broker,
      EnclaveBroker: enclaveBroker,
      ToolRegistry: registry,
      BrokerSession: session,
      SessionManager: manager,
      SessionHandler: new SessionHandler({ broker }),
      EventFilter: new EventFilter({ config: { mode: 'include', rules: [] } }),
      ToolRouter: new ToolRouter(),
      AccessController: new AccessController(),
      RateLimiter: new RateLimiter(),
      OpenApiSpecPoller: new OpenApiSpecPoller({ url: 'http://127.0.0.1:9/openapi.json' }),
      OpenApiToolLoader: await OpenApiToolLoader.fromSpec({}),
      OpenApiSource: new OpenApiSource(registry, { name: 'svc', url: 'http://127.0.0.1:9/openapi.json', baseUrl: 'http://127.0.0.1:9' }),
      CatalogHandler: new CatalogHandler(registry, []),
      RuntimeWorker: new RuntimeWorker(),
    };
    expect(Object.keys(instances).toSorted()).toEqual(Object.keys(declared.classMembers).toSorted());
    for (const [name, instance] of Object.entries(instances)) {
      const members = declared.classMembers[name];
      const missing = members.filter((m) => !(m in instance));
      expect(missing, `${name}: declared but absent`).toEqual([]);
      const internals = UNDECLARED_INTERNALS[name] ?? [];
      const undeclared = publicMembers(instance).filter((m) => !members.includes(m) && !internals.includes(m));
      expect(undeclared, `${name}: present but not declared`).toEqual([]);
    }
  });
});

// Every file under `dir`, as paths relative to the package root.
const filesUnder = (dir) =>
  fs
    .readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(ROOT, path.join(e.parentPath ?? e.path, e.name)).split(path.sep).join('/'));

describe('npm pack', () => {
  let files;

  beforeAll(() => {
    // --dry-run writes nothing; --ignore-scripts keeps lifecycle scripts out of it.
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120000,
    });
    const [result] = JSON.parse(out);
    files = result.files.map((f) => f.path);
  }, 150000);

  it('packs the entry points, their declarations, the loader, the CLI and every lib file', () => {
    for (const f of ['index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'package.json', 'bin/enclave-runtime.js']) expect(files, f).toContain(f);
    const lib = filesUnder('lib');
    expect(lib.length).toBeGreaterThan(0);
    for (const f of lib) expect(files, f).toContain(f);
  });

  it('packs the playground page (EnclaveBroker playground: true serves it from the package)', () => {
    const page = filesUnder('playground');
    expect(page).toEqual(expect.arrayContaining(['playground/index.html', 'playground/app.js', 'playground/style.css']));
    for (const f of page) expect(files, f).toContain(f);
  });

  it('packs nothing from the tests, the Rust sources, build output or scratch space', () => {
    const unwanted = files.filter((f) => /^(__test__|crates|src|target|scratch|bench|npm|node_modules|\.ci)\//.test(f));
    expect(unwanted).toEqual([]);
    // The addon and the engine binary ship in the platform package, as napi-rs lays
    // packages out, so the root package stays platform-neutral.
    expect(files.filter((f) => f.endsWith('.node'))).toEqual([]);
    expect(files).not.toContain(ENGINE);
  });
});

describe('platform package', () => {
  it('has the napi-rs platform-package shape', () => {
    expect(platformPkg.name).toBe(`${rootPkg.napi.packageName}-linux-x64-gnu`);
    expect(platformPkg.name).toBe('enclave-broker-rs-linux-x64-gnu');
    expect(platformPkg.version).toBe(rootPkg.version);
    expect(platformPkg.os).toEqual(['linux']);
    expect(platformPkg.cpu).toEqual(['x64']);
    expect(platformPkg.libc).toEqual(['glibc']);
    expect(platformPkg.main).toBe(ADDON);
    expect(platformPkg.files).toEqual([ADDON, ENGINE]);
  });

  it("matches the root package's napi block, its loader and its type entry", () => {
    expect(rootPkg.napi.binaryName).toBe('enclave-broker');
    expect(rootPkg.napi.packageName).toBe(rootPkg.name);
    expect(rootPkg.napi.targets).toEqual([
      'x86_64-unknown-linux-gnu',
      'aarch64-unknown-linux-gnu',
      'x86_64-apple-darwin',
      'aarch64-apple-darwin',
      'x86_64-pc-windows-msvc',
    ]);
    const loader = fs.readFileSync(path.join(ROOT, 'binding.js'), 'utf8');
    expect(loader).toContain(`./${ADDON}`);
    expect(loader).toContain(`'${platformPkg.name}'`);
    // TypeScript reads the first matching condition, so `types` must come first.
    expect(rootPkg.types).toBe('index.d.ts');
    expect(Object.keys(rootPkg.exports['.'])[0]).toBe('types');
    expect(rootPkg.exports['.'].types).toBe('./index.d.ts');
    expect(rootPkg.files).toContain('index.d.ts');
  });
});

describe('built binaries', () => {
  const addon = path.join(ROOT, ADDON);
  const engine = path.join(ROOT, ENGINE);

  it('the addon exports only N-API entry points: no V8, no libuv', () => {
    expect(fs.existsSync(addon), addon).toBe(true);
    let symbols;
    try {
      symbols = execFileSync('nm', ['-D', '--defined-only', addon], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
      console.warn('nm is not installed: the exported-symbol check of the addon did not run');
      return;
    }
    const names = symbols
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields.length >= 3)
      .map((fields) => fields[2]);
    expect(names).toContain('napi_register_module_v1');
    expect(names.filter((n) => n.startsWith('_ZN2v8') || n.includes('v8::'))).toEqual([]);
    expect(names.filter((n) => n.startsWith('uv_'))).toEqual([]);
    const entryPoints = /^(napi_register_module_v1|node_api_module_get_api_version_v1)$/;
    const linkerMarkers = /^(_init|_fini|_edata|_end|__bss_start)$/;
    expect(names.filter((n) => !entryPoints.test(n) && !linkerMarkers.test(n))).toEqual([]);
  });

  it('the engine binary sits next to the addon and is executable', () => {
    const stat = fs.statSync(engine);
    expect(stat.isFile()).toBe(true);
    expect(stat.mode & 0o111).not.toBe(0);
    expect(() => fs.accessSync(engine, fs.constants.X_OK)).not.toThrow();
    expect(path.dirname(engine)).toBe(path.dirname(addon));
  });
});
