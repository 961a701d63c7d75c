// The two example fetchers in examples/, run as real programs (node child processes importing the
// built package as 'uvfetch'): a Redis client against a real redis-server it starts itself, and a
// raw HTTP/1.0 fetcher over TLS against a local https server.

import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup } from '../helpers/http-servers.js';
import { tlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function run(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, 'examples', script), ...args], { cwd: root, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

beforeAll(() => {
  // The examples import 'uvfetch' (the package itself, through its exports): dist/ must exist.
  if (!fs.existsSync(path.join(root, 'dist', 'index.js')) || !fs.existsSync(path.join(root, 'dist', 'raw-socket.js'))) {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
  }
});

const redisMissing = hasCommand('redis-server') ? undefined : 'redis-server is not installed (Debian package redis-server; .ci/run installs it)';
if (redisMissing !== undefined) console.log(`examples.test: skipping the Redis example: ${redisMissing}`);

describe('examples', () => {
  it.skipIf(redisMissing !== undefined)('redis-ping.mjs talks RESP to a real redis-server it starts', async () => {
    const r = await run('redis-ping.mjs', []);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^redis-server started on 127\.0\.0\.1:\d+$/m);
    expect(r.stdout).toContain('PING -> PONG');
    expect(r.stdout).toContain('GET uvfetch:greeting -> hello from uvfetch');
    expect(r.stdout).toContain('GET uvfetch:missing -> null');
    expect(r.stdout).toContain('100 concurrent INCR -> 100 (100 distinct replies)');
  });

  it('tls-http10.mjs fetches over native TLS with a raw HTTP/1.0 request', async () => {
    const fx: TlsFixtures = await tlsFixtures();
    const seen: string[] = [];
    const server = https.createServer({ key: fx.server.key, cert: fx.server.cert }, (req, res) => {
      seen.push(`${req.method} ${req.url} HTTP/${req.httpVersion}`);
      res.setHeader('content-type', 'text/plain');
      res.end('hello over tls\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.add(() => new Promise<void>((r) => server.close(() => r())));
    const ca = path.join(fx.dir, 'example-ca.pem');
    fs.writeFileSync(ca, fx.caPem);
    const port = (server.address() as AddressInfo).port;
    const r = await run('tls-http10.mjs', [`https://localhost:${port}/hello?x=1`, '--ca', ca]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(seen).toEqual(['GET /hello?x=1 HTTP/1.0']);
    expect(r.stdout).toMatch(/^tls: TLSv1\.[23] \S+ alpn=\S+ ja4=t1[23]d/m);
    expect(r.stdout).toMatch(/^HTTP\/1\.[01] 200 OK$/m);
    expect(r.stdout).toMatch(/^content-type: text\/plain$/im);
    expect(r.stdout).toContain('hello over tls');
  });
});
