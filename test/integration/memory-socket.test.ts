// The benchmarks' socket-less stand-in (lib/bench-hooks.ts, native/core/net/memory_socket.h):
// sessions given kMemoryResponse run the whole engine without the kernel. Checked here so the
// micro-benchmark measures a working path: responses parse, connections are reused, several
// requests at once each get their answer, and close() releases everything.

import { describe, expect, it } from 'vitest';
import { Session, type SessionOptions } from '../../lib/index.js';
import { kMemoryResponse } from '../../tools/bench-hooks.js';

const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 13\r\nX-Fake: 1\r\n\r\nHello, World!';

describe('memory socket (benchmark hook)', () => {
  it('answers every request without a socket; keep-alive reuse; concurrent requests; clean close', async () => {
    const s = new Session({ connectionsPerHost: 8, [kMemoryResponse]: RESPONSE } as SessionOptions);
    const first = await s.request('http://127.0.0.1:9/a');
    expect(first.status).toBe(200);
    expect(first.body.toString()).toBe('Hello, World!');
    expect(first.headers.get('x-fake')).toBe('1');
    for (let i = 0; i < 100; i++) expect((await s.request('http://127.0.0.1:9/b')).info.reused).toBe(true);
    const many = await Promise.all(Array.from({ length: 200 }, () => s.request('http://127.0.0.1:9/c')));
    expect(many.every((r) => r.status === 200 && r.body.length === 13)).toBe(true);
    const st = s.stats();
    expect(st.connections.created).toBe(8);
    expect(st.requests.completed).toBe(301);
    expect(st.fd.open).toBeGreaterThan(0);
    await s.close();
    expect(s.stats().connections.open).toBe(0);
  });

  it('is off unless asked for: an ordinary session still dials (and is refused here)', async () => {
    const s = new Session();
    const e = await s.request('http://127.0.0.1:9/').catch((x) => x);
    expect(e.code).toBe('ERR_CONNECTION_REFUSED');
    await s.close();
  });
});
