// HTTP/2 flow control seen from real servers: a stream() consumer that stops reading stops only its
// own stream (the server's writes for it stall at about the stream window), never the others on the
// connection, even when the paused streams together hold more than the connection window; reading
// again resumes it to the last byte. Windows are replenished as data is consumed (a download far
// larger than the windows, with no initial connection WINDOW_UPDATE, completes).

import type { StreamResponse } from '../../lib/index.js';
import { describe, expect, it } from 'vitest';
import { h2Kit, patternBytes, peerMissing, sha256, startNghttpd, startNodeH2 } from '../helpers/h2-servers.js';
import { sleep, waitFor, within } from '../helpers/http-servers.js';

const kit = h2Kit();
const MiB = 1024 * 1024;

describe('a paused stream stalls only itself', () => {
  it('20 paused 8 MiB streams (1 MiB stream windows, 20 MiB unread > the connection window) do not stall 10 other downloads', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session({
      h2: {
        settings: [
          ['ENABLE_PUSH', 0],
          ['INITIAL_WINDOW_SIZE', MiB],
        ],
      },
      timeout: { body: 30_000 },
    });
    const paused: StreamResponse[] = await within(
      Promise.all(Array.from({ length: 20 }, (_, i) => s.stream(srv.url(`/bytes/${8 * MiB}/${300 + i}`)))),
      15_000,
      '20 stream() heads',
    );
    expect(paused.every((r) => r.info.httpVersion === '2')).toBe(true);
    expect(srv.sessionCount).toBe(1);
    const big = () => srv.streams.filter((x) => x.path.startsWith(`/bytes/${8 * MiB}/`));
    // Each paused stream gets about its window's worth, then the server's writes stall.
    await waitFor(() => big().length === 20 && big().every((x) => x.bytesOut >= MiB / 2), 15_000, 'each paused stream to fill its window');
    await sleep(300);
    const stalledAt = big().map((x) => x.bytesOut);

    const others = await within(
      Promise.all(Array.from({ length: 10 }, (_, i) => s.request(srv.url(`/bytes/${MiB}/${400 + i}`)))),
      20_000,
      '10 downloads next to 20 paused streams',
    );
    others.forEach((r, i) => expect(sha256(r.body)).toBe(sha256(patternBytes(MiB, 400 + i))));
    expect(srv.sessionCount).toBe(1);

    // The paused streams did not move while nobody read them (the client withheld their WINDOW_UPDATEs).
    const now = big().map((x) => x.bytesOut);
    for (let i = 0; i < 20; i++) {
      expect(now[i]).toBeLessThan(4 * MiB);
      expect(now[i]! - stalledAt[i]!).toBeLessThanOrEqual(MiB);
    }
    // Reading again resumes each to the last byte.
    const bodies = await within(Promise.all(paused.map((r) => r.buffer())), 60_000, 'resumed streams');
    bodies.forEach((b, i) => expect(sha256(b)).toBe(sha256(patternBytes(8 * MiB, 300 + i))));
    expect(big().every((x) => x.bytesOut === 8 * MiB)).toBe(true);
  });

  it.skipIf(peerMissing('nghttpd'))('nghttpd: a paused 16 MiB stream() does not stall 30 small requests; it completes when read', async () => {
    const file = patternBytes(16 * MiB, 21);
    const srv = kit.track(await startNghttpd({ tls: kit.fx.server, files: { 'big.bin': file }, verbose: false }));
    const s = kit.session({ timeout: { body: 30_000 } });
    const st = await within(s.stream(srv.url('/big.bin')), 10_000, 'stream head');
    await sleep(300);
    const small = await within(Promise.all(Array.from({ length: 30 }, () => s.request(srv.url('/index.html')))), 15_000, 'small requests');
    expect(small.every((r) => r.status === 200 && r.info.httpVersion === '2')).toBe(true);
    expect(sha256(await within(st.buffer(), 60_000, 'the paused stream'))).toBe(sha256(file));
  });

  it('a slow reader (5 ms per chunk) and fast requests share the connection', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session({ timeout: { body: 30_000 } });
    const st = await s.stream(srv.url(`/bytes/${2 * MiB}/31`));
    const slow = (async () => {
      const parts: Buffer[] = [];
      for await (const c of st.body) {
        parts.push(c as Buffer);
        await sleep(5);
      }
      return Buffer.concat(parts);
    })();
    const t0 = Date.now();
    const fast = await within(Promise.all(Array.from({ length: 20 }, (_, i) => s.request(srv.url(`/fast/${i}`)))), 15_000, 'fast requests');
    const fastMs = Date.now() - t0;
    expect(fast.every((r) => r.status === 200)).toBe(true);
    expect(sha256(await within(slow, 60_000, 'slow reader'))).toBe(sha256(patternBytes(2 * MiB, 31)));
    // The fast ones did not wait for the slow stream (which takes well over a second to read).
    expect(fastMs).toBeLessThan(5_000);
    expect(srv.sessionCount).toBe(1);
  });
});

describe('windows are replenished', () => {
  it('no initial connection WINDOW_UPDATE and 64 KiB stream windows: a 12 MiB download completes', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session({
      h2: {
        settings: [
          ['ENABLE_PUSH', 0],
          ['INITIAL_WINDOW_SIZE', 65535],
        ],
        connectionWindowIncrement: 0,
      },
    });
    const r = await within(s.request(srv.url(`/bytes/${12 * MiB}/41`)), 30_000, 'download');
    expect(sha256(r.body)).toBe(sha256(patternBytes(12 * MiB, 41)));
    expect(r.info.h2Fingerprint?.split('|')[0]).toBe('2:0;4:65535');
  });
});
