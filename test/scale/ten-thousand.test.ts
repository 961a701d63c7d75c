// 10,000 simultaneous keep-alive connections to one local server, each serving a request: the
// server (another process) answers nothing until all 10,000 requests are in, so every one of
// them needs its own open connection at the same moment.
import { expect, it } from 'vitest';
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session, limits } from '../../lib/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const N = 10_000;

it(`${N} simultaneous keep-alive connections all serve a request`, async () => {
  const soft = limits.raiseFdLimit();
  expect(soft).toBeGreaterThan(N + 500); // the machine must allow it (CI's hard limit is 20,000)
  const child = fork(path.join(here, 'fixtures', 'hold-server.mjs'), [String(N)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const lines: string[] = [];
  let buf = '';
  const nextLine = () =>
    new Promise<string>((resolve) => {
      const check = () => {
        if (lines.length > 0) return resolve(lines.shift()!);
        setTimeout(check, 10);
      };
      check();
    });
  child.stdout!.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) !== -1) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  try {
    const port = Number(await nextLine());
    const s = new Session({ connections: N, connectionsPerHost: N, timeout: { headers: 60_000 } });
    const results = await Promise.allSettled(Array.from({ length: N }, (_, i) => s.request(`http://127.0.0.1:${port}/c${i}`)));
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.length, String((failed[0] as PromiseRejectedResult | undefined)?.reason)).toBe(0);
    const st = s.stats();
    expect(st.connections.created).toBe(N);
    expect(st.connections.open).toBe(N);
    expect(st.connections.idle).toBe(N);
    await s.close();
    child.send('report');
    const report = JSON.parse(await nextLine()) as { maxPending: number; connections: number };
    expect(report.maxPending).toBe(N);
    expect(report.connections).toBe(N);
  } finally {
    child.kill();
  }
}, 120_000);
