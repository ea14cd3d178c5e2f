// index.d.ts, checked with the TypeScript compiler the way users consume it: the fixtures in
// __test__/types/ (a CommonJS and an ES-module consumer, importing the package by name) must
// compile with zero diagnostics, which also proves every `@ts-expect-error` misuse in them is
// rejected; and index.d.ts must compile on its own with no DOM library and no @types/node.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TYPES_DIR = path.join(ROOT, '__test__', 'types');
const DTS = path.join(ROOT, 'index.d.ts');

function loadConfig(file) {
  const configPath = path.join(TYPES_DIR, file);
  const read = ts.readConfigFile(configPath, ts.sys.readFile);
  if (read.error) throw new Error(format([read.error]));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(configPath), undefined, configPath);
  if (parsed.errors.length > 0) throw new Error(format(parsed.errors));
  return parsed;
}

function format(diagnostics) {
  return ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => ROOT,
    getNewLine: () => '\n',
  });
}

function compile(parsed, host) {
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options, host });
  return { program, diagnostics: ts.getPreEmitDiagnostics(program) };
}

const samePath = (a, b) => path.resolve(a) === path.resolve(b);

describe('index.d.ts under the TypeScript compiler', () => {
  let usage;
  let program;
  let diagnostics;
  beforeAll(() => {
    usage = loadConfig('tsconfig.json');
    ({ program, diagnostics } = compile(usage));
  }, 120000);

  it('compiles the CommonJS and ES-module usage fixtures with zero diagnostics', () => {
    expect(format(diagnostics)).toBe('');
    expect(diagnostics).toHaveLength(0);
  });

  it('resolves the package by name to index.d.ts, as a CommonJS module for both consumers', () => {
    const files = program.getSourceFiles();
    const dts = files.find((f) => samePath(f.fileName, DTS));
    expect(dts, 'index.d.ts reached through the package name').toBeDefined();
    // index.d.ts is not a root file: only module resolution of 'enclave-broker-rs' brings it in.
    expect(program.getRootFileNames().some((f) => samePath(f, DTS))).toBe(false);
    // Same format as index.js (CommonJS); ESM consumers see it through Node's CJS interop, which
    // is what index.mjs provides at run time.
    expect(dts.impliedNodeFormat).toBe(ts.ModuleKind.CommonJS);
    const cjs = files.find((f) => samePath(f.fileName, path.join(TYPES_DIR, 'usage.ts')));
    const esm = files.find((f) => samePath(f.fileName, path.join(TYPES_DIR, 'usage.mts')));
    expect(cjs.impliedNodeFormat).toBe(ts.ModuleKind.CommonJS);
    expect(esm.impliedNodeFormat).toBe(ts.ModuleKind.ESNext);
    for (const consumer of [cjs, esm]) {
      const resolved = program.getResolvedModule(consumer, 'enclave-broker-rs', consumer.impliedNodeFormat);
      expect(resolved?.resolvedModule?.resolvedFileName, consumer.fileName).toBeDefined();
      expect(samePath(resolved.resolvedModule.resolvedFileName, DTS)).toBe(true);
    }
  });

  it('needs no DOM library and no @types/node', { timeout: 120000 }, () => {
    const standalone = compile(loadConfig('tsconfig.standalone.json'));
    expect(standalone.program.getRootFileNames().map((f) => path.resolve(f))).toEqual([DTS]);
    expect(format(standalone.diagnostics)).toBe('');
  });

  // The checks above pass vacuously if the fixtures stop reaching the declarations, so the same
  // compiler setup must also report misuse that is not marked as expected.
  it('reports errors for misuse that no directive expects', { timeout: 120000 }, () => {
    const probeFile = path.join(TYPES_DIR, '__probe__.mts');
    const probe = [
      "import { createBroker, createTypeFilter } from 'enclave-broker-rs';",
      'const broker = createBroker();',
      'broker.listTools().push(1);',
      "createTypeFilter('include', ['tool_calls']);",
      "await broker.execute('return 1', { onEvent: (e) => e.payload.chunk });",
      "// @ts-expect-error nothing is wrong on the next line",
      'broker.listTools();',
    ].join('\n');
    const host = ts.createCompilerHost(usage.options);
    const getSourceFile = host.getSourceFile.bind(host);
    const fileExists = host.fileExists.bind(host);
    const readFile = host.readFile.bind(host);
    host.fileExists = (f) => samePath(f, probeFile) || fileExists(f);
    host.readFile = (f) => (samePath(f, probeFile) ? probe : readFile(f));
    host.getSourceFile = (f, languageVersion, ...rest) =>
      samePath(f, probeFile) ? ts.createSourceFile(f, probe, languageVersion) : getSourceFile(f, languageVersion, ...rest);
    const result = compile({ fileNames: [probeFile], options: usage.options }, host);
    const errors = result.diagnostics.map((d) => [d.code, d.file ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0]);
    expect(errors).toEqual([
      [2345, 3], // listTools() gives names: a number is not assignable to 'string'.
      [2820, 4], // '"tool_calls"' is not assignable to type 'EventType'. Did you mean '"tool_call"'?
      [2339, 5], // Property 'chunk' does not exist on the un-narrowed payload union.
      [2578, 6], // Unused '@ts-expect-error' directive.
    ]);
  });
});
