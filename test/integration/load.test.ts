// Load: 10,000 GETs from 100 concurrent workers against one keep-alive node:http server. All must
// succeed on at most 100 connections, and every file descriptor must be released afterwards.

import { afterEach, describe, expect, it } from 'vitest';
import { Session } from '../../lib/index.js';
import { Cleanup, fdCount, startHttpServer, waitFor, within } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('load', () => {
  it('10,000 GETs at concurrency 100: all succeed, ≤ 100 connections, fds back to the start', async () => {
    const TOTAL = 10_000;
    const WORKERS = 100;
    // Before anything of this test exists (server and client live in this process).
    const fd0 = fdCount();

    const srv = await startHttpServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`r${req.url!.slice(1)}`);
    });
    const s = new Session({ connectionsPerHost: 100 });
    cleanup.add(() => s.destroy());

    let next = 0;
    let ok = 0;
    const failures: string[] = [];
    let maxFd = 0;
    async function worker(): Promise<void> {
      for (let guard = 0; guard < TOTAL; guard++) {
        const i = next++;
        if (i >= TOTAL) return;
        try {
          const res = await s.request(srv.url(`/${i}`));
          const text = await res.text();
          if (res.status === 200 && text === `r${i}`) ok++;
          else failures.push(`${i}: ${res.status} ${text}`);
        } catch (e) {
          failures.push(`${i}: ${(e as Error).message}`);
        }
        if ((i & 1023) === 0) maxFd = Math.max(maxFd, fdCount());
      }
    }
    await within(Promise.all(Array.from({ length: WORKERS }, worker)), 120_000, '10,000 requests');

    expect(failures.slice(0, 5)).toEqual([]);
    expect(ok).toBe(TOTAL);
    expect(srv.requests).toHaveLength(TOTAL);
    const st = s.stats();
    expect(st.requests).toMatchObject({ started: TOTAL, completed: TOTAL, failed: 0, inFlight: 0, queued: 0, retried: 0 });
    expect(st.connections.created).toBeLessThanOrEqual(100);
    expect(st.connections.created + st.connections.reused).toBe(TOTAL);
    expect(srv.connections).toBe(st.connections.created);
    expect(srv.maxOpen).toBeLessThanOrEqual(100);
    expect(srv.maxInFlight).toBeLessThanOrEqual(100);
    // Each open connection costs two fds here (client + server end), plus the listener.
    expect(maxFd - fd0).toBeLessThanOrEqual(2 * 100 + 1 + 8);

    // Closing the session closes every client socket: the server sees them all go away.
    await within(s.close(), 10_000, 'session.close()');
    expect(s.stats().connections.open).toBe(0);
    await waitFor(() => srv.open === 0, 5000, 'the server to see every client socket closed');
    expect(srv.closed).toBe(srv.connections);
    // Only the listening socket is left.
    await waitFor(() => fdCount() <= fd0 + 1, 5000, `fd count ${fdCount()} to drop to ${fd0 + 1}`);

    await srv.close();
    await waitFor(() => fdCount() === fd0, 5000, `fd count ${fdCount()} to return to ${fd0}`);
    expect(fdCount()).toBe(fd0);
  }, 180_000);

  it('a second load round on the same session reuses its sockets (no new connections)', async () => {
    const srv = await startHttpServer((_req, res) => res.end('x'));
    const s = new Session({ connectionsPerHost: 20 });
    cleanup.add(() => s.destroy());
    const round = async (n: number) => {
      let next = 0;
      const worker = async () => {
        for (let guard = 0; guard < n; guard++) {
          if (next++ >= n) return;
          const r = await s.request(srv.url('/'));
          expect(r.status).toBe(200);
        }
      };
      await Promise.all(Array.from({ length: 20 }, worker));
    };
    await within(round(1000), 60_000, 'round 1');
    const created = s.stats().connections.created;
    expect(created).toBeLessThanOrEqual(20);
    await within(round(1000), 60_000, 'round 2');
    expect(s.stats().connections.created).toBe(created);
    expect(srv.connections).toBe(created);
    await s.close();
  }, 120_000);
});
