// Runs and type-checks code samples (README blocks, seed-document samples) the way a user
// would: as files of a project that installed the package, in a fresh Node process, and
// through the TypeScript compiler with the package resolved by name.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { ROOT, splitSandboxLog } from './index.mjs';

// A temp project whose node_modules has the package (this checkout), zod, express and
// ioredis, plus `stubModules` ({name: CommonJS source}) for third-party modules a sample imports.
export function sampleProject(stubModules = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-samples-'));
  const modules = path.join(dir, 'node_modules');
  fs.mkdirSync(modules);
  // Junctions on Windows need no privilege; elsewhere the type is ignored.
  const link = (target, name) => fs.symlinkSync(target, path.join(modules, name), 'junction');
  link(ROOT, 'enclave-broker-rs');
  for (const name of ['zod', 'express', 'ioredis']) link(path.join(ROOT, 'node_modules', name), name);
  for (const [name, source] of Object.entries(stubModules)) {
    fs.mkdirSync(path.join(modules, name));
    fs.writeFileSync(path.join(modules, name, 'index.js'), source);
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'samples', private: true }));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

// TypeScript to JavaScript (types erased; every value import kept, used or not), as tsc emits it.
export function transpile(source) {
  return ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  }).outputText;
}

// Writes `source` as `file` in the project and runs it with Node. Resolves {status, stdout, stderr}.
export function runSample(dir, file, source, { env = {}, timeoutMs = 60000 } = {}) {
  fs.writeFileSync(path.join(dir, file), source);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, ...splitSandboxLog(stderr) });
    });
  });
}

// Compiles `files` ({name: source}) as if they sat in this package's `__test__/.samples/`
// folder (so 'enclave-broker-rs' resolves to this package by name, through its exports map)
// with tsc's strict NodeNext settings. Resolves {name: [{code, line, message}]}.
export function typeCheck(files, extraOptions = {}) {
  const dir = path.join(ROOT, '__test__', '.samples');
  const virtual = new Map(Object.entries(files).map(([name, text]) => [path.join(dir, name), text]));
  const options = {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    typeRoots: [path.join(ROOT, 'node_modules', '@types')],
    skipLibCheck: true,
    ...extraOptions,
  };
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (f) => virtual.has(path.resolve(f)) || fileExists.call(host, f);
  host.readFile = (f) => virtual.get(path.resolve(f)) ?? readFile.call(host, f);
  host.getSourceFile = (f, languageVersion, ...rest) => {
    const text = virtual.get(path.resolve(f));
    return text === undefined ? getSourceFile.call(host, f, languageVersion, ...rest) : ts.createSourceFile(f, text, languageVersion, true);
  };
  const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  const result = Object.fromEntries(Object.keys(files).map((name) => [name, []]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const name = d.file ? path.relative(dir, d.file.fileName) : '(global)';
    const line = d.file ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    (result[name] ??= []).push({ code: d.code, line, message: ts.flattenDiagnosticMessageText(d.messageText, '\n') });
  }
  return result;
}

// TypeScript's "Cannot find name" diagnostics: the identifiers a sample uses without defining.
const UNDEFINED_NAME = new Set([2304, 2552, 2582]);
export function undefinedNames(diagnostics) {
  const names = new Set();
  for (const d of diagnostics) {
    if (!UNDEFINED_NAME.has(d.code)) continue;
    const match = /Cannot find name '([^']+)'/.exec(d.message);
    if (match) names.add(match[1]);
  }
  return [...names].toSorted();
}
