// When a completion or an error reaches JS, the counters it implies are already true: stats()
// read in the same tick as the rejection shows no connection for a request that just failed
// because its connection was refused, reset or timed out.
import type * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Session } from '../../lib/index.js';
import { Cleanup, closedPort, hangingPort, sessionFactory, startHttpServer, startNetServer } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
const session = sessionFactory(cleanup);
afterEach(() => cleanup.run());

/** Rejection of `p` with stats() taken synchronously inside the rejection handler. */
async function failWithStats(s: Session, p: Promise<unknown>) {
  let stats: ReturnType<Session['stats']> | undefined;
  let error: any;
  await p.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (e) => {
      stats = s.stats();
      error = e;
    },
  );
  return { error, stats: stats! };
}

function expectNoConnection(stats: ReturnType<Session['stats']>) {
  expect(stats.connections).toMatchObject({ open: 0, active: 0, idle: 0, connecting: 0 });
  expect(stats.requests).toMatchObject({ inFlight: 0, queued: 0, failed: 1 });
}

describe('stats agree with the errors already delivered', () => {
  it('refused: no open connection in the tick of the rejection', async () => {
    const port = await closedPort();
    const s = session();
    const { error, stats } = await failWithStats(s, s.request(`http://127.0.0.1:${port}/`));
    expect(error.code).toBe('ERR_CONNECTION_REFUSED');
    expectNoConnection(stats);
    expect(stats.connections.created).toBe(1);
  });

  it('reset by the server mid-request: no open connection in the tick of the rejection', async () => {
    const srv = await startNetServer((sock) => {
      sock.once('data', () => sock.resetAndDestroy());
    });
    const s = session();
    const { error, stats } = await failWithStats(s, s.request(`http://127.0.0.1:${srv.port}/`));
    expect(error.code).toBe('ERR_CONNECTION_RESET');
    expectNoConnection(stats);
  });

  it('headers timeout: no open connection in the tick of the rejection', async () => {
    const sockets: net.Socket[] = [];
    const srv = await startNetServer((sock) => {
      sockets.push(sock); // reads the request, never answers
      sock.on('error', () => {});
    });
    cleanup.add(() => sockets.forEach((x) => x.destroy()));
    const s = session({ timeout: { headers: 150 } });
    const { error, stats } = await failWithStats(s, s.request(`http://127.0.0.1:${srv.port}/`));
    expect(error.code).toBe('ERR_HEADERS_TIMEOUT');
    expectNoConnection(stats);
  });

  it('connect timeout: no connecting connection in the tick of the rejection', async () => {
    const port = await hangingPort(cleanup);
    const s = session({ timeout: { connect: 200 } });
    const { error, stats } = await failWithStats(s, s.request(`http://127.0.0.1:${port}/`));
    expect(error.code).toBe('ERR_CONNECT_TIMEOUT');
    expectNoConnection(stats);
  });

  it('per origin too, and a success right after a failure counts its own connection only', async () => {
    const ok = await startHttpServer((_req, res) => res.end('ok'));
    const port = await closedPort();
    const s = session();
    const { stats } = await failWithStats(s, s.request(`http://127.0.0.1:${port}/`));
    expect(stats.connections.open).toBe(0);
    const res = await s.request(`http://127.0.0.1:${ok.port}/`);
    await res.text();
    const after = s.stats({ perOrigin: true });
    expect(after.connections).toMatchObject({ open: 1, idle: 1, active: 0 });
    expect(after.connections.perOrigin).toEqual([{ origin: `http://127.0.0.1:${ok.port}`, open: 1, idle: 1, queued: 0, streams: 0 }]);
  });

  it('close() while a response is in flight: the connection that carried it closes once', async () => {
    const srv = await startHttpServer((_req, res) => setTimeout(() => res.end('ok'), 20));
    const s = session();
    const p = s.request(`http://127.0.0.1:${srv.port}/`);
    const closed = s.close();
    const res = await p;
    await res.text();
    // The last response ends the graceful close: its keep-alive connection must not also be
    // parked idle (it was counted as closing twice, and open went below zero).
    expect(s.stats().connections).toMatchObject({ open: 0, active: 0, idle: 0 });
    await closed;
    expect(s.stats().connections).toMatchObject({ open: 0, active: 0, idle: 0, connecting: 0 });
  });
});
