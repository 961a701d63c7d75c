// `uvfetch fetch` (one machine, no Redis): a 100,000-URL file killed and resumed, Ctrl-C with
// whole lines only, malformed lines as error results, bodies in files, stdin, progress lines.

import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync, writeFileSync, statSync, truncateSync, existsSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { ensureFleetBuilt, startRecordingServer, sessionOptionsFile, spawnCli, exitOf, waitFor, tempDir, type RecordingServer } from './helpers.js';

interface Rec {
  url: string;
  line: number;
  status: number | null;
  error: { code: string } | null;
  aborted?: boolean;
  body?: string;
  bodyFile?: string;
  bodySize: number | null;
  headers: Record<string, string[]> | null;
  timings: Record<string, number> | null;
}

/** Parses a JSONL output: every line must be complete JSON. */
function readOut(file: string): Rec[] {
  const text = readFileSync(file, 'utf8');
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Rec);
}

function countLines(file: string): number {
  if (!existsSync(file)) return 0;
  const b = readFileSync(file);
  let n = 0;
  for (let i = 0; i < b.length; i++) if (b[i] === 10) n++;
  return n;
}

beforeAll(ensureFleetBuilt);

describe('uvfetch fetch', () => {
  it('100,000 URLs: killed mid-run, resumed: complete, valid JSONL with every line exactly once', { timeout: 300_000 }, async () => {
    const srv = await startRecordingServer(0);
    const tmp = tempDir('batch');
    try {
      const hosts = Array.from({ length: 100 }, (_, i) => `b${i}.batch.test`);
      const sess = sessionOptionsFile(tmp.dir, hosts);
      const lines: string[] = [];
      const bad = new Set<number>();
      for (let i = 0; i < 100_000; i++) {
        if (i % 10_000 === 5000) {
          lines.push(i % 20_000 === 5000 ? 'http://[bad' : 'not a url at all');
          bad.add(i + 1);
        } else lines.push(`http://${hosts[i % 100]}:${srv.port}/p/${i + 1}`);
      }
      const input = path.join(tmp.dir, 'urls.txt');
      writeFileSync(input, `${lines.join('\n')}\n`);
      const out = path.join(tmp.dir, 'out.jsonl');
      const args = ['fetch', input, '--out', out, '--concurrency', '128', '--session-options', sess, '--progress-interval', '500'];
      const first = spawnCli(args);
      await waitFor('30,000 results', () => countLines(out) >= 30_000 || first.proc.exitCode !== null, 180_000, 50);
      first.proc.kill('SIGKILL');
      await first.exited;
      const partial = countLines(out);
      expect(partial).toBeGreaterThanOrEqual(30_000);
      expect(partial).toBeLessThan(100_000);
      expect(first.stderr()).toMatch(/uvfetch fetch: +\d+\.\d% {2}[\d,]+\/100,000 {2}[\d,]+\/s {2}ETA \S+ {2}errors \d+ {2}conns \d+/);
      const second = spawnCli([...args, '--resume']);
      expect(await exitOf(second, 240_000, 'fetch --resume'), second.stderr().slice(-2000)).toBe(0);
      expect(second.stderr()).toMatch(/resuming: \d+ line\(s\) already done/);
      const recs = readOut(out);
      const seen = new Map<number, Rec>();
      for (const r of recs) {
        expect(seen.has(r.line), `line ${r.line} twice`).toBe(false);
        seen.set(r.line, r);
      }
      expect(seen.size).toBe(100_000);
      for (let n = 1; n <= 100_000; n++) {
        const r = seen.get(n)!;
        if (bad.has(n)) {
          expect(r.error!.code).toBe('ERR_INVALID_URL');
          expect(r.url).toBe(lines[n - 1]);
        } else {
          expect(r.url).toBe(lines[n - 1]);
          expect(r.status).toBe(200);
          expect(r.body).toBe(`ok /p/${n}`);
        }
      }
      expect(srv.hits.size).toBe(100_000 - bad.size);
      // Fetched twice at most: what the first run had in flight or unwritten when it was killed.
      expect(srv.total - srv.hits.size).toBeLessThanOrEqual(100_000 - partial);
    } finally {
      await srv.close();
      tmp.remove();
    }
  });

  it('Ctrl-C: in-flight requests past --grace are recorded as aborted, whole lines only, exit 130; --resume refetches them', { timeout: 60_000 }, async () => {
    let srv: RecordingServer | undefined = await startRecordingServer(1500);
    const tmp = tempDir('batch-int');
    try {
      const input = path.join(tmp.dir, 'urls.txt');
      const n = 300;
      writeFileSync(input, `${Array.from({ length: n }, (_, i) => `http://i.test:${srv!.port}/s/${i + 1}`).join('\n')}\n`);
      const out = path.join(tmp.dir, 'out.jsonl');
      const args = ['fetch', input, '--out', out, '--concurrency', '40', '--resolve', 'i.test:127.0.0.1', '--grace', '300'];
      const run = spawnCli(args);
      const s = srv;
      await waitFor('40 requests in flight', () => s.total >= 40, 20_000, 20);
      run.proc.kill('SIGINT');
      expect(await exitOf(run, 20_000, 'fetch'), run.stderr()).toBe(130);
      expect(run.stderr()).toMatch(/interrupted/);
      const recs = readOut(out);
      expect(recs.length).toBeGreaterThanOrEqual(40);
      expect(recs.length).toBeLessThan(n);
      const aborted = recs.filter((r) => r.aborted === true);
      expect(aborted.length).toBeGreaterThan(0);
      for (const r of aborted) expect(r.error!.code).toBe('ERR_ABORTED');
      // Resume against a quick server on the same port: everything not done is fetched.
      const port = s.port;
      await s.close();
      srv = undefined;
      srv = await startRecordingServer(0, port);
      const again = spawnCli([...args, '--resume']);
      expect(await exitOf(again, 40_000, 'fetch --resume'), again.stderr()).toBe(0);
      const all = readOut(out).filter((r) => r.aborted !== true);
      expect(new Set(all.map((r) => r.line)).size).toBe(n);
      expect(all).toHaveLength(n);
      for (const r of all) expect(r.status).toBe(200);
    } finally {
      await srv?.close();
      tmp.remove();
    }
  });

  it('--resume repairs a cut last line; stdin input; bodies in files or inline up to --inline-max; JSON request lines', { timeout: 60_000 }, async () => {
    const srv = await startRecordingServer(0);
    const tmp = tempDir('batch-misc');
    try {
      const u = `http://m.test:${srv.port}`;
      const input = [
        `${u}/a`,
        '',
        '# a comment',
        JSON.stringify({ url: `${u}/post`, method: 'POST', body: 'x', headers: { 'x-a': '1' } }),
        JSON.stringify({ url: `${u}/q`, nope: 1 }),
        '{"url": 5}',
        'mailto:someone@example.com',
        `${u}/${'long'.repeat(10)}`,
      ].join('\n');
      const out = path.join(tmp.dir, 'o.jsonl');
      const bodies = path.join(tmp.dir, 'bodies');
      const base = ['fetch', '-', '--out', out, '--resolve', 'm.test:127.0.0.1', '-q'];
      const r1 = spawnCli([...base, '--bodies', bodies], input);
      expect(await exitOf(r1, 30_000, 'fetch'), r1.stderr()).toBe(0);
      const recs = readOut(out);
      expect(recs).toHaveLength(6);
      const byLine = new Map(recs.map((r) => [r.line, r]));
      expect(byLine.get(1)).toMatchObject({ status: 200, error: null, bodySize: 5 });
      expect(readFileSync(path.join(bodies, byLine.get(1)!.bodyFile!), 'utf8')).toBe('ok /a');
      expect(byLine.get(1)!.headers!['content-length']).toEqual(['5']);
      expect(byLine.get(1)!.timings!.total).toBeGreaterThan(0);
      expect(byLine.get(4)).toMatchObject({ status: 200, error: null });
      expect(byLine.get(5)!.error!.code).toBe('ERR_INVALID_OPTION');
      expect(byLine.get(6)!.error!.code).toBe('ERR_INVALID_URL');
      expect(byLine.get(7)!.error!.code).toBe('ERR_UNSUPPORTED_PROTOCOL');
      // Cut the file inside its last line, as a kill mid-write would; --resume drops the cut line.
      const size = statSync(out).size;
      truncateSync(out, size - 20);
      const r2 = spawnCli([...base, '--resume', '--inline-max', '10'], input);
      expect(await exitOf(r2, 30_000, 'fetch --resume'), r2.stderr()).toBe(0);
      const again = readOut(out);
      expect(again).toHaveLength(6);
      expect(new Set(again.map((r) => r.line))).toEqual(new Set([1, 4, 5, 6, 7, 8]));
      const redone = again[again.length - 1]!;
      if (redone.status === 200) {
        // Fetched again with --inline-max 10 and no --bodies: inline if it fits, else omitted.
        expect(redone.bodySize! <= 10 ? redone.body !== undefined : (redone as { bodyOmitted?: boolean }).bodyOmitted).toBe(true);
      }
    } finally {
      await srv.close();
      tmp.remove();
    }
  });

  it('--impersonate presents as the browser: its User-Agent and header order reach the server', async () => {
    const seen: Array<{ ua: string | undefined; names: string[] }> = [];
    const srv = http.createServer((req, res) => {
      seen.push({ ua: req.headers['user-agent'], names: req.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()) });
      res.end('ok');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (srv.address() as AddressInfo).port;
      const p = spawnCli(['fetch', '-', '-q', '--impersonate', 'chrome'], `http://127.0.0.1:${port}/x\n`);
      expect(await exitOf(p, 20_000, 'fetch')).toBe(0);
      const rec = JSON.parse(p.stdout().trim());
      expect(rec.status).toBe(200);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.ua).toMatch(/Chrome\/\d+/);
      // The navigation headers come in the profile's order, before anything the engine adds.
      const names = seen[0]!.names;
      expect(names.indexOf('user-agent')).toBeLessThan(names.indexOf('accept'));
      expect(names).toContain('sec-fetch-mode');
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('usage errors exit 2: an unknown --impersonate profile, --resume needs --out', async () => {
    const a = spawnCli(['fetch', '-', '--impersonate', 'nope']);
    expect(await exitOf(a, 20_000, 'fetch')).toBe(2);
    expect(a.stderr()).toMatch(/unknown profile 'nope'/);
    const b = spawnCli(['fetch', '-', '--resume']);
    expect(await exitOf(b, 20_000, 'fetch')).toBe(2);
    expect(b.stderr()).toMatch(/--resume needs --out/);
  });
});
