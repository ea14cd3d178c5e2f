// What a new user gets from npm: both tarballs (the root package and this machine's platform
// package, its binaries put in place by `npm run artifacts`) are packed into a temp folder
// and installed with npm into a fresh project with zod, where a script with a tool call runs
// with no `cargo` on PATH. Also the errors of a missing platform package and of a source
// build without Rust, and the README's statements about downloads and glibc.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/index.mjs';

const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const SUFFIX = 'linux-x64-gnu';
const PLATFORM_PKG = `${rootPkg.name}-${SUFFIX}`;
const ADDON = `${rootPkg.napi.binaryName}.${SUFFIX}.node`;
const ENGINE = 'enclave-engine';
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

// The environment of a user's shell: no npm lifecycle variables from the `npm test` that runs
// this, no engine override, and a PATH without any folder that has cargo in it.
function userEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
  delete env.ENCLAVE_BROKER_ENGINE;
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH;
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((dir) => dir !== '' && !fs.existsSync(path.join(dir, 'cargo')));
  dirs.unshift(path.dirname(process.execPath));
  env.PATH = [...new Set(dirs)].join(path.delimiter);
  return env;
}

function npm(args, cwd, env = userEnv()) {
  return spawnSync('npm', args, { cwd, env, encoding: 'utf8', timeout: 240000, maxBuffer: 64 * 1024 * 1024 });
}

function ok(result, what) {
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${what} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

function runScript(cwd, file, source) {
  fs.writeFileSync(path.join(cwd, file), source);
  return spawnSync(process.execPath, [file], { cwd, env: userEnv(), encoding: 'utf8', timeout: 60000 });
}

const files = (pack) => pack.files.map((f) => f.path).toSorted();
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

// The newest glibc symbol version a binary links against is the oldest glibc it runs on.
function newestGlibc(file) {
  const out = execFileSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const versions = [...out.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return versions.at(-1).join('.');
}

const TOOL_CALL_SCRIPT = `
const { createBroker } = require('enclave-broker-rs');
const { z } = require('zod');

const broker = createBroker();
broker.tool('math:add', {
  argsSchema: z.object({ a: z.number(), b: z.number() }),
  handler: async ({ a, b }) => a + b,
});
const types = [];
broker
  .execute("const sum = await callTool('math:add', { a: 2, b: 3 }); console.log('sum', sum); return sum * 10;", {
    onEvent: (event) => types.push(event.type),
  })
  .then(async (result) => {
    console.log(JSON.stringify({ result, types }));
    await broker.dispose();
  });
`;

describe('npm install of the packed tarballs, without Rust', () => {
  let work;
  let project;
  let tarballs;

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-install-'));
    const packs = path.join(work, 'packs');
    project = path.join(work, 'project');
    fs.mkdirSync(packs);
    fs.mkdirSync(project);
    // `npm run artifacts`; the root's `npm pack` runs it again as its prepack step.
    ok(spawnSync(process.execPath, ['scripts/artifacts.js'], { cwd: ROOT, encoding: 'utf8' }), 'npm run artifacts');
    const packed = (cwd) => JSON.parse(ok(npm(['pack', '--json', '--pack-destination', packs], cwd), `npm pack in ${cwd}`))[0];
    tarballs = { root: packed(ROOT), platform: packed(path.join(ROOT, 'npm', SUFFIX)) };
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'install-probe', version: '1.0.0', private: true }));
    const zod = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'zod', 'package.json'), 'utf8')).version;
    const specs = [path.join(packs, tarballs.root.filename), path.join(packs, tarballs.platform.filename), `zod@${zod}`];
    // From npm's cache when it has everything (the other platforms' packages are optional and
    // skipped); the registry is asked only for what the cache lacks.
    let install = npm(['install', '--offline', '--no-audit', '--no-fund', ...specs], project);
    if (install.status !== 0) install = npm(['install', '--prefer-offline', '--no-audit', '--no-fund', ...specs], project);
    ok(install, 'npm install');
  }, 300000);

  afterAll(() => {
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
  });

  it('packs the platform-neutral root and a platform package carrying the addon and the engine', () => {
    expect(files(tarballs.platform)).toEqual(['README.md', ENGINE, ADDON, 'package.json'].toSorted());
    expect(files(tarballs.root).filter((f) => f.endsWith('.node') || f.startsWith(ENGINE))).toEqual([]);
    expect(rootPkg.optionalDependencies[PLATFORM_PKG]).toBe(rootPkg.version);
    expect(tarballs.platform.version).toBe(rootPkg.version);
    // What a user downloads and unpacks (printed for the release notes).
    console.log(
      `root ${mb(tarballs.root.size)} packed / ${mb(tarballs.root.unpackedSize)} installed; ` +
        `${PLATFORM_PKG} ${mb(tarballs.platform.size)} packed / ${mb(tarballs.platform.unpackedSize)} installed`,
    );
    // The README's figures stay within a quarter of the real ones.
    const stated = README.match(/downloads about (\d+) MB \(([\d.]+) MB once installed/);
    expect(stated, 'README: "downloads about N MB (M MB once installed"').not.toBeNull();
    expect(Math.abs(tarballs.platform.size / 1e6 - Number(stated[1]))).toBeLessThan(Number(stated[1]) / 4);
    expect(Math.abs(tarballs.platform.unpackedSize / 1e6 - Number(stated[2]))).toBeLessThan(Number(stated[2]) / 4);
  });

  it('installs the binaries only in the platform package', () => {
    const modules = path.join(project, 'node_modules');
    const installed = (...p) => fs.existsSync(path.join(modules, ...p));
    expect(installed(PLATFORM_PKG, ADDON)).toBe(true);
    expect(installed(PLATFORM_PKG, ENGINE)).toBe(true);
    expect(fs.statSync(path.join(modules, PLATFORM_PKG, ENGINE)).mode & 0o111).not.toBe(0);
    expect(installed('enclave-broker-rs', ADDON)).toBe(false);
    expect(installed('enclave-broker-rs', ENGINE)).toBe(false);
  });

  it('runs a script with a tool call, with no cargo on PATH', () => {
    const cargo = spawnSync('cargo', ['--version'], { env: userEnv() });
    expect(cargo.error?.code).toBe('ENOENT');
    const run = runScript(project, 'tool-call.js', TOOL_CALL_SCRIPT);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const { result, types } = JSON.parse(run.stdout.trim());
    expect(result).toMatchObject({ success: true, value: 50, finalState: 'completed' });
    expect(result.stats.toolCallCount).toBe(1);
    expect(types[0]).toBe('session_init');
    expect(types).toContain('tool_call');
    expect(types).toContain('stdout');
    expect(types.at(-1)).toBe('final');
  });

  it('without the platform package, require() names the platform, the package and the source build', () => {
    const modules = path.join(project, 'node_modules');
    const moved = path.join(work, 'moved-platform-package');
    fs.renameSync(path.join(modules, PLATFORM_PKG), moved);
    try {
      const run = runScript(project, 'require-only.js', "require('enclave-broker-rs');\n");
      expect(run.status).not.toBe(0);
      const message = run.stderr.split('\n').find((line) => line.startsWith('Error: '));
      expect(message).toContain(`could not load its native addon for ${SUFFIX}`);
      expect(message).toContain(`the package ${PLATFORM_PKG}`);
      expect(message).toContain('not installed');
      expect(message).toContain('https://rustup.rs');
      expect(message).toContain('npm run build');
    } finally {
      fs.renameSync(moved, path.join(modules, PLATFORM_PKG));
    }
  });
});

describe('errors a user meets without a prebuilt binary or without Rust', () => {
  it('on a platform with no prebuilt package, says so, names the package and how to build', () => {
    // The checkout's loader on a machine it has no binary for (riscv64 stands in for any).
    const preload = "Object.defineProperty(process, 'arch', { value: 'riscv64' });";
    const run = spawnSync(process.execPath, ['-e', `${preload} require('./index.js')`], {
      cwd: ROOT,
      env: userEnv(),
      encoding: 'utf8',
      timeout: 60000,
    });
    expect(run.status).not.toBe(0);
    const message = run.stderr.split('\n').find((line) => line.startsWith('Error: '));
    expect(message).toContain('could not load its native addon for linux-riscv64-gnu');
    expect(message).toContain('There is no prebuilt enclave-broker-rs for this platform (linux-riscv64-gnu)');
    expect(message).toContain('the package enclave-broker-rs-linux-riscv64-gnu');
    expect(message).toContain('linux-x64-gnu, linux-arm64-gnu, darwin-x64, darwin-arm64, win32-x64-msvc');
    expect(message).toContain('https://rustup.rs');
  });

  it('a source build without cargo says that Rust is needed and where to get it', () => {
    const run = spawnSync(process.execPath, ['scripts/build.js'], { cwd: ROOT, env: userEnv(), encoding: 'utf8', timeout: 60000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('Building enclave-broker-rs from source needs Rust, and cargo is not on PATH.');
    expect(run.stderr).toContain('https://rustup.rs');
    expect(run.stderr).not.toContain('cargo metadata');
  });
});

describe("the README's statements about the Linux binaries", () => {
  it('states the glibc that the binaries need', () => {
    const stated = README.match(/glibc (\d+\.\d+) or newer/);
    expect(stated, 'README: "glibc X.Y or newer"').not.toBeNull();
    const needed = [ADDON, ENGINE].map((file) => newestGlibc(path.join(ROOT, file)).split('.').map(Number));
    needed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(needed.at(-1).join('.')).toBe(stated[1]);
  });
});
