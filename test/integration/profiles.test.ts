// Browser profiles (impersonate): the data, and what a Session actually sends for each shipped
// profile on the running Node, checked independently on the server side: the ClientHello is
// parsed and fingerprinted by test/helpers/client-hello.ts (not the project's own parser), the
// HTTP/1.1 request head is read from Node's http server (raw header names, in order), the HTTP/2
// preface frames are read by test/helpers/h2-preface.ts from the bytes received and the HTTP/2
// header fields come from Node's http2 server (rawHeaders, in order).
import crypto from 'node:crypto';
import type http from 'node:http';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { profileFingerprint, profiles, Session, TlsProfile, UvfetchError } from '../../lib/index.js';
import { type CapturingTlsServer, isGrease, ja4, ja4Raw, parseClientHelloRecords, startCapturingTlsServer } from '../helpers/client-hello.js';
import { akamaiString, FRAME, type H2CaptureServer, parseH2Preface, pseudoLetters, startH2CaptureServer } from '../helpers/h2-preface.js';
import { Cleanup, sessionFactory, thrown } from '../helpers/http-servers.js';
import { ensureCliBuilt, runCli } from '../helpers/run-cli.js';
import { type TlsFixtures, tlsFixtures } from '../helpers/tls-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);

let fx: TlsFixtures;
beforeAll(async () => {
  fx = await tlsFixtures();
}, 60_000);

const NODE = Number(process.versions.node.split('.')[0]);
const OPENSSL_30 = process.versions.openssl.startsWith('3.0');

// ---- what each Node sends (measured; README "Browser profiles" states the same) ------------------
//   Node 20: OpenSSL 3.0 — the 0x00ff SCSV instead of renegotiation_info, no X25519MLKEM768,
//            no certificate compression, no zstd decoding.
//   Node 22: OpenSSL 3.5 built without compression algorithms — no compress_certificate.
//   Node 24: OpenSSL 3.5 with zlib and brotli — compress_certificate sent.
const EXPECTED_JA4: Record<number, Record<string, string>> = {
  20: {
    'chrome-149': 't13d1613h2_1711a4c0508c_7a49ca64a771',
    'firefox-141': 't13d1814h2_796efca44d18_365d9928b9c8',
    'safari-26': 't13d1811h2_796efca44d18_96e479bb0bb0',
  },
  22: {
    'chrome-149': 't13d1514h2_8daaf6152771_de124e8f7d01',
    'firefox-141': 't13d1715h2_5b57614c22b0_b863923be7cd',
    'safari-26': 't13d1712h2_5b57614c22b0_363650bf9bb3',
  },
  24: {
    'chrome-149': 't13d1515h2_8daaf6152771_0a20fe35d3a5',
    'firefox-141': 't13d1716h2_5b57614c22b0_1f587763df07',
    'safari-26': 't13d1713h2_5b57614c22b0_7dc0f4860127',
  },
};
const CERT_COMPRESSION = NODE >= 24;

// IANA codes of the OpenSSL names the profiles use (written out here, independently of the lib).
const CIPHER: Record<string, number> = {
  TLS_AES_128_GCM_SHA256: 0x1301,
  TLS_AES_256_GCM_SHA384: 0x1302,
  TLS_CHACHA20_POLY1305_SHA256: 0x1303,
  'ECDHE-ECDSA-AES128-GCM-SHA256': 0xc02b,
  'ECDHE-RSA-AES128-GCM-SHA256': 0xc02f,
  'ECDHE-ECDSA-AES256-GCM-SHA384': 0xc02c,
  'ECDHE-RSA-AES256-GCM-SHA384': 0xc030,
  'ECDHE-ECDSA-CHACHA20-POLY1305': 0xcca9,
  'ECDHE-RSA-CHACHA20-POLY1305': 0xcca8,
  'ECDHE-ECDSA-AES128-SHA': 0xc009,
  'ECDHE-ECDSA-AES256-SHA': 0xc00a,
  'ECDHE-RSA-AES128-SHA': 0xc013,
  'ECDHE-RSA-AES256-SHA': 0xc014,
  'AES128-GCM-SHA256': 0x009c,
  'AES256-GCM-SHA384': 0x009d,
  'AES128-SHA': 0x002f,
  'AES256-SHA': 0x0035,
};
const SIGALG: Record<string, number> = {
  ecdsa_secp256r1_sha256: 0x0403,
  ecdsa_secp384r1_sha384: 0x0503,
  ecdsa_secp521r1_sha512: 0x0603,
  rsa_pss_rsae_sha256: 0x0804,
  rsa_pss_rsae_sha384: 0x0805,
  rsa_pss_rsae_sha512: 0x0806,
  rsa_pkcs1_sha256: 0x0401,
  rsa_pkcs1_sha384: 0x0501,
  rsa_pkcs1_sha512: 0x0601,
};
const GROUP: Record<string, number> = { X25519MLKEM768: 0x11ec, X25519: 0x1d, 'P-256': 0x17, 'P-384': 0x18, 'P-521': 0x19, ffdhe2048: 0x100, ffdhe3072: 0x101 };

/** The extensions a profile's hello carries on this Node (GREASE aside), as a sorted set. */
function expectedExtensions(name: string): number[] {
  const p = profiles[name]!;
  const t = p.tls;
  const e = [0, 10, 11, 13, 16, 23, 43, 45, 51];
  if (!OPENSSL_30) e.push(65281);
  if (t.sessionTickets !== false) e.push(35);
  if (t.statusRequest) e.push(5);
  if (t.signedCertificateTimestamps) e.push(18);
  if (t.encryptThenMac !== false) e.push(22);
  if (t.echGrease) e.push(65037);
  if (t.recordSizeLimit) e.push(28);
  if (CERT_COMPRESSION && (t.certCompression?.length ?? 0) > 0) e.push(27);
  return e.sort((a, b) => a - b);
}

/** An HTTPS server that speaks HTTP/1.1 only (ALPN http/1.1), capturing each ClientHello. */
async function server(handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<CapturingTlsServer> {
  const s = await startCapturingTlsServer({ key: fx.server.key, cert: fx.server.cert, handler, ALPNProtocols: ['http/1.1'] });
  cleanup.add(() => s.close());
  return s;
}

/** A TLS server offering h2 only, keeping the bytes each connection received. */
async function h2Server(): Promise<H2CaptureServer> {
  const s = await startH2CaptureServer({ key: fx.server.key, cert: fx.server.cert });
  cleanup.add(() => s.close());
  return s;
}

// What the engine does not send on HTTP/2 of a profile's headers: nothing (a header the browser sends
// on HTTP/2 only, Firefox's `te: trailers`, is an HTTP/2-only default header).
const H2_NOT_SENT: Record<string, string[]> = {};

const sha12 = (s: string) => crypto.createHash('sha256').update(s).digest('hex').slice(0, 12);

describe('profiles (data)', () => {
  it('ships chrome, firefox and safari, versioned; the bare name is the newest', () => {
    expect(profiles.chrome).toBe(profiles['chrome-149']);
    expect(profiles.firefox).toBe(profiles['firefox-141']);
    expect(profiles.safari).toBe(profiles['safari-26']);
    expect(profiles['chrome-141']!.name).toBe('chrome-141');
    expect(Object.isFrozen(profiles.chrome)).toBe(true);
    expect(Object.isFrozen(profiles.chrome!.headers)).toBe(true);
  });

  it('each target JA4 equals the hash of its own published lists (JA4_r), and every part names a source', () => {
    for (const name of ['chrome-149', 'chrome-141', 'firefox-141', 'safari-26']) {
      const p = profiles[name]!;
      const [a, c, e, s] = p.targets.ja4r.split('_');
      expect(`${a}_${sha12(c!)}_${sha12(`${e}_${s}`)}`, name).toBe(p.targets.ja4);
      for (const k of ['ja4', 'ja3', 'akamaiH2', 'tls', 'h2', 'headers'] as const) expect(p.sources[k].length, `${name} ${k}`).toBeGreaterThan(10);
      // The Akamai string is the h2 section, written out.
      const h2 = p.h2;
      const akamai = `${h2.settings.map(([k, v]) => `${k}:${v}`).join(';')}|${h2.connectionWindowIncrement}|0|${h2.pseudoHeaderOrder.map((x) => x[1]).join(',')}`;
      expect(akamai, name).toBe(p.targets.akamaiH2);
    }
  });

  it('with() derives a new frozen profile; the original is unchanged', () => {
    const mine = profiles.chrome!.with({ name: 'chrome-mine', headers: [['user-agent', 'mine/1']], http1: { headerOrder: ['User-Agent'] } });
    expect(mine.name).toBe('chrome-mine');
    expect(mine.tls.ciphersuites).toEqual(profiles.chrome!.tls.ciphersuites);
    expect(mine.headers).toEqual([['user-agent', 'mine/1']]);
    expect(profiles.chrome!.headers.length).toBe(13);
    expect(Object.isFrozen(mine)).toBe(true);
  });

  it('bad input: an unknown name, a TlsProfile with impersonate, a malformed profile → ERR_INVALID_OPTION', () => {
    const e1 = thrown(() => new Session({ impersonate: 'netscape' }));
    expect(e1).toBeInstanceOf(UvfetchError);
    expect((e1 as UvfetchError).code).toBe('ERR_INVALID_OPTION');
    expect((e1 as Error).message).toMatch(/chrome-149/);
    const e2 = thrown(() => new Session({ impersonate: 'chrome', tls: new TlsProfile() }));
    expect((e2 as UvfetchError).code).toBe('ERR_INVALID_OPTION');
    const e3 = thrown(() => new Session({ impersonate: { ...profiles.chrome!, headers: [['a']] } as never }));
    expect((e3 as UvfetchError).code).toBe('ERR_INVALID_OPTION');
    const e4 = thrown(() => new Session({ impersonate: profiles.chrome!.with({ tls: { recordSizeLimit: 5 } }) }));
    expect((e4 as UvfetchError).code).toBe('ERR_INVALID_OPTION');
  });
});

describe(`impersonate on Node ${NODE} (OpenSSL ${process.versions.openssl})`, () => {
  for (const name of ['chrome-149', 'firefox-141', 'safari-26']) {
    it(`${name}: a real handshake and an HTTP/1.1 request; ClientHello, ALPN and HTTP/1.1 head as expected`, async () => {
      const heads: string[][] = [];
      const srv = await server((req, res) => {
        heads.push(req.rawHeaders);
        res.end('ok');
      });
      const p = profiles[name]!;
      const s = session({ impersonate: name, tls: { ca: fx.caPem } });
      const res = await s.request(`https://localhost:${srv.port}/`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
      expect(res.info.impersonate).toBe(name);
      expect(srv.tlsErrors).toEqual([]);

      const hello = parseClientHelloRecords(srv.hellos[0]!);
      const ciphers = hello.ciphers.filter((c) => !isGrease(c));
      const want = [...(p.tls.ciphersuites as string[]), ...(p.tls.ciphers as string[])].map((n) => CIPHER[n]!);
      expect(ciphers).toEqual(OPENSSL_30 ? [...want, 0x00ff] : want);
      const exts = hello.extensions.filter((e) => !isGrease(e));
      expect([...exts].sort((a, b) => a - b)).toEqual(expectedExtensions(name));
      expect(hello.extensions.some(isGrease)).toBe(p.tls.grease === true);
      // SHA-1 signatures are left out by OpenSSL's security level; the rest in the profile's order.
      const sigs = (p.tls.sigalgs as string[]).filter((n) => SIGALG[n] !== undefined).map((n) => SIGALG[n]);
      expect(hello.sigalgs).toEqual(sigs);
      const groups = (p.tls.groups as string[]).map((g) => g.replace('?', '')).filter((g) => !(OPENSSL_30 && g === 'X25519MLKEM768'));
      expect(hello.groups.filter((g) => !isGrease(g))).toEqual(groups.map((g) => GROUP[g]));
      // The browser's ALPN list (h2 first) although this server then picks http/1.1: JA4 says h2.
      expect(hello.alpn).toEqual(['h2', 'http/1.1']);
      expect(p.tls.alpn).toEqual(['h2', 'http/1.1']);
      expect(hello.sni).toBe('localhost');
      const fp = ja4(hello);
      // The sorted cipher list (JA4_r) is the browser's minus what this OpenSSL lacks (3DES), plus the 3.0 SCSV.
      expect(ja4Raw(hello).split('_')[1]).toBe(
        [...want, ...(OPENSSL_30 ? [0x00ff] : [])]
          .sort((a, b) => a - b)
          .map((c) => c.toString(16).padStart(4, '0'))
          .join(','),
      );
      if (!OPENSSL_30 && name !== 'safari-26') expect(fp.split('_')[1], "JA4 cipher hash equals the browser's").toBe(p.targets.ja4.split('_')[1]);
      const expected = EXPECTED_JA4[NODE]?.[name];
      if (expected !== undefined) expect(fp).toBe(expected);
      expect(res.tls!.ja4).toBe(fp); // the engine's self-report agrees with the independent parse
      expect(res.tls!.alpn).toBe('http/1.1');
      expect(res.info.httpVersion).toBe('1.1');
      expect(res.info.h2Fingerprint).toBeUndefined();

      // The request head: Host first, then the profile's HTTP/1.1 order, spelling and values.
      const raw = heads[0]!;
      const names = raw.filter((_, i) => i % 2 === 0);
      expect(names).toEqual(['Host', ...p.http1.headerOrder.filter((n) => n === 'Connection' || p.headers.some(([h]) => h === n.toLowerCase()))]);
      const value = (n: string) => raw[raw.indexOf(n) + 1];
      expect(value('Connection')).toBe('keep-alive');
      for (const [h, v] of p.headers) {
        const spelled = p.http1.headerOrder.find((n) => n.toLowerCase() === h);
        if (spelled === undefined) continue;
        if (h === 'accept-encoding' && NODE < 22) expect(value(spelled)).toBe('gzip, deflate, br');
        else expect(value(spelled)).toBe(v);
      }
    });
  }

  it("the user's headers replace values in the profile's order; others follow; Host stays first", async () => {
    const heads: string[][] = [];
    const srv = await server((req, res) => {
      heads.push(req.rawHeaders);
      res.end('ok');
    });
    const s = session({ impersonate: 'chrome', tls: { ca: fx.caPem } });
    await s.request(`https://localhost:${srv.port}/`, { headers: { 'accept-language': 'de-DE,de;q=0.9', 'x-extra': '1', 'USER-AGENT': 'mine/1' } });
    const raw = heads[0]!;
    const names = raw.filter((_, i) => i % 2 === 0);
    expect(names[0]).toBe('Host');
    expect(names.at(-1)).toBe('x-extra');
    expect(names.indexOf('Accept-Language')).toBe(names.indexOf('Accept-Encoding') + 1);
    expect(raw[raw.indexOf('Accept-Language') + 1]).toBe('de-DE,de;q=0.9');
    expect(raw[raw.indexOf('User-Agent') + 1]).toBe('mine/1');
    expect(names.filter((n) => n.toLowerCase() === 'user-agent')).toEqual(['User-Agent']);
    // The session's userAgent option replaces the profile's, in place; '' sends none.
    await session({ impersonate: 'chrome', userAgent: 'sess/2', tls: { ca: fx.caPem } }).request(`https://localhost:${srv.port}/`);
    const raw2 = heads[1]!;
    expect(raw2.indexOf('User-Agent')).toBe(raw.indexOf('User-Agent'));
    expect(raw2[raw2.indexOf('User-Agent') + 1]).toBe('sess/2');
    await session({ impersonate: 'chrome', userAgent: '', tls: { ca: fx.caPem } }).request(`https://localhost:${srv.port}/`);
    expect(heads[2]!.filter((_, i) => i % 2 === 0).some((n) => n.toLowerCase() === 'user-agent')).toBe(false);
  });

  it('works with a TLS 1.2-only server, and resumes sessions with the shaped hello', async () => {
    const srv12 = await startCapturingTlsServer({ key: fx.server.key, cert: fx.server.cert, maxVersion: 'TLSv1.2' });
    cleanup.add(() => srv12.close());
    const s12 = session({ impersonate: 'firefox', tls: { ca: fx.caPem } });
    const r12 = await s12.request(`https://localhost:${srv12.port}/`);
    expect(r12.status).toBe(200);
    expect(r12.tls!.protocol).toBe('TLSv1.2');
    // A server that closes after each response: the next connection resumes.
    const srv = await server((_req, res) => {
      res.setHeader('connection', 'close');
      res.end('ok');
    });
    const s = session({ impersonate: 'chrome', tls: { ca: fx.caPem } });
    const a = await s.request(`https://localhost:${srv.port}/`);
    await a.text();
    let resumed = false;
    for (let i = 0; i < 5 && !resumed; i++) {
      const b = await s.request(`https://localhost:${srv.port}/`);
      await b.text();
      resumed = b.tls!.resumed;
    }
    expect(resumed).toBe(true);
    expect(srv.tlsErrors).toEqual([]);
  });

  it('a derived profile object works as impersonate and names itself in res.info', async () => {
    const srv = await server();
    const mine = profiles.firefox!.with({ name: 'firefox-quiet', tls: { echGrease: false, recordSizeLimit: 4096 } });
    const s = session({ impersonate: mine, tls: { ca: fx.caPem } });
    const res = await s.request(`https://localhost:${srv.port}/`);
    expect(res.info.impersonate).toBe('firefox-quiet');
    const exts = parseClientHelloRecords(srv.hellos[0]!).extensions;
    expect(exts).not.toContain(65037);
    expect(exts).toContain(28);
  });
});

describe(`HTTP/2 as each profile on Node ${NODE} (preface parsed by the test)`, () => {
  /** The value the profile's header has on the wire on this Node (zstd is dropped where it cannot be decoded). */
  const wireValue = (h: string, v: string) => (h === 'accept-encoding' && NODE < 22 ? 'gzip, deflate, br' : v);

  for (const name of ['chrome-149', 'firefox-141', 'safari-26']) {
    it(`${name}: SETTINGS, WINDOW_UPDATE, PRIORITY, HEADERS priority, pseudo-header and header order as the profile; the Akamai string is the target`, async () => {
      const srv = await h2Server();
      const p = profiles[name]!;
      const s = session({ impersonate: name, tls: { ca: fx.caPem } });
      const res = await s.request(`https://localhost:${srv.port}/`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
      expect(res.info.httpVersion).toBe('2');
      expect(res.tls!.alpn).toBe('h2');
      expect(srv.tlsErrors).toEqual([]);
      expect(srv.conns.length).toBe(1);
      expect(srv.conns[0]!.alpn).toBe('h2');

      const pre = parseH2Preface(srv.conns[0]!.received())!;
      expect(pre).not.toBeNull();
      // The frames before the request, in order: SETTINGS, the connection WINDOW_UPDATE, PRIORITY frames.
      const before = pre.frames.slice(0, -1).map((f) => f.type);
      expect(before).toEqual([
        FRAME.SETTINGS,
        ...(p.h2.connectionWindowIncrement > 0 ? [FRAME.WINDOW_UPDATE] : []),
        ...p.h2.priorityFrames.map(() => FRAME.PRIORITY),
      ]);
      expect(pre.settings).toEqual(p.h2.settings.map(([k, v]) => [k, v]));
      expect(pre.connectionWindowIncrement).toBe(p.h2.connectionWindowIncrement > 0 ? p.h2.connectionWindowIncrement : null);
      expect(pre.priorityFrames).toEqual(p.h2.priorityFrames.map((f) => ({ ...f })));
      // The request: one HEADERS frame on stream 1 ending the stream (a GET), with the profile's priority.
      expect(pre.frames.at(-1)!.type).toBe(FRAME.HEADERS);
      expect(pre.headers.streamId).toBe(1);
      expect(pre.headers.endStream).toBe(true);
      expect(pre.headers.continuations).toBe(0);
      expect(pre.headers.priority).toEqual(p.h2.headersPriority === null ? null : { ...p.h2.headersPriority });

      // The header fields as Node's http2 server decoded them, in order.
      const raw = srv.streams[0]!.rawHeaders;
      expect(pseudoLetters(raw).map((l) => `:${{ m: 'method', a: 'authority', s: 'scheme', p: 'path' }[l]}`)).toEqual([...p.h2.pseudoHeaderOrder]);
      const pseudo = new Map<string, string>();
      const fields: [string, string][] = [];
      for (let i = 0; i < raw.length; i += 2) {
        if (raw[i]!.startsWith(':')) pseudo.set(raw[i]!, raw[i + 1]!);
        else fields.push([raw[i]!, raw[i + 1]!]);
      }
      expect(Object.fromEntries(pseudo)).toEqual({ ':method': 'GET', ':authority': `localhost:${srv.port}`, ':scheme': 'https', ':path': '/' });
      const notSent = H2_NOT_SENT[name] ?? [];
      const want = p.headers.filter(([h]) => !notSent.includes(h)).map(([h, v]) => [h, wireValue(h, v)]);
      expect(fields).toEqual(want);

      // Akamai: parsed here = the profile's target = the engine's self-report.
      const akamai = akamaiString(pre, raw);
      expect(akamai).toBe(p.targets.akamaiH2);
      expect(res.info.h2Fingerprint).toBe(akamai);
    });
  }

  it('firefox-141 sends `te: trailers` on HTTP/2 as Firefox does (an HTTP/2-only default header)', async () => {
    const srv = await h2Server();
    await session({ impersonate: 'firefox', tls: { ca: fx.caPem } }).request(`https://localhost:${srv.port}/`);
    const raw = srv.streams[0]!.rawHeaders;
    expect(raw.slice(-2)).toEqual(['te', 'trailers']);
  });

  it("on HTTP/2 the user's headers replace values in the profile's order; others follow; a derived h2 section reaches the wire", async () => {
    const srv = await h2Server();
    const s = session({ impersonate: 'chrome', tls: { ca: fx.caPem } });
    await s.request(`https://localhost:${srv.port}/`, { headers: { 'x-extra': '1', 'Accept-Language': 'de-DE,de;q=0.9', 'USER-AGENT': 'mine/1' } });
    const raw = srv.streams[0]!.rawHeaders;
    const names = raw.filter((_, i) => i % 2 === 0).filter((n) => !n.startsWith(':'));
    expect(names).toEqual([...profiles.chrome!.headers.map(([h]) => h), 'x-extra']);
    expect(raw[raw.indexOf('accept-language') + 1]).toBe('de-DE,de;q=0.9');
    expect(raw[raw.indexOf('user-agent') + 1]).toBe('mine/1');

    // PRIORITY frames and the session's `h2` option over the profile's (SETTINGS replaced, the rest kept).
    const mine = profiles.firefox!.with({
      name: 'firefox-prio',
      h2: {
        priorityFrames: [
          { streamId: 3, exclusive: false, dependsOn: 0, weight: 201 },
          { streamId: 5, exclusive: true, dependsOn: 3, weight: 1 },
        ],
      },
    });
    const s2 = session({
      impersonate: mine,
      h2: {
        settings: [
          ['INITIAL_WINDOW_SIZE', 65535],
          ['HEADER_TABLE_SIZE', 4096],
        ],
      },
      tls: { ca: fx.caPem },
    });
    const r2 = await s2.request(`https://localhost:${srv.port}/`);
    const pre = parseH2Preface(srv.conns[1]!.received())!;
    expect(pre.settings).toEqual([
      [4, 65535],
      [1, 4096],
    ]);
    expect(pre.priorityFrames).toEqual(mine.h2.priorityFrames.map((f) => ({ ...f })));
    expect(pre.frames.slice(0, -1).map((f) => f.type)).toEqual([FRAME.SETTINGS, FRAME.WINDOW_UPDATE, FRAME.PRIORITY, FRAME.PRIORITY]);
    expect(pre.headers.streamId).toBe(7); // after the ids the PRIORITY frames used
    expect(pre.headers.priority).toEqual({ exclusive: false, dependsOn: 0, weight: 42 });
    const akamai = akamaiString(pre, srv.streams[1]!.rawHeaders);
    expect(akamai).toBe('4:65535;1:4096|12517377|3:0:0:201,5:1:3:1|m,p,a,s');
    expect(r2.info.h2Fingerprint).toBe(akamai);
  });

  it('a profile without a connection WINDOW_UPDATE sends none (Akamai "00")', async () => {
    const srv = await h2Server();
    const mine = profiles.chrome!.with({ name: 'chrome-nowindow', h2: { connectionWindowIncrement: 0 } });
    const res = await session({ impersonate: mine, tls: { ca: fx.caPem } }).request(`https://localhost:${srv.port}/`);
    const pre = parseH2Preface(srv.conns[0]!.received())!;
    expect(pre.connectionWindowIncrement).toBeNull();
    expect(pre.frames.slice(0, -1).map((f) => f.type)).toEqual([FRAME.SETTINGS]);
    expect(akamaiString(pre, srv.streams[0]!.rawHeaders)).toBe('1:65536;2:0;4:6291456;6:262144|00|0|m,a,s,p');
    expect(res.info.h2Fingerprint).toBe('1:65536;2:0;4:6291456;6:262144|00|0|m,a,s,p');
  });

  it('with no connection WINDOW_UPDATE, res.info.h2Fingerprint writes "00" there as the Akamai format does', async () => {
    const srv = await h2Server();
    const mine = profiles.chrome!.with({ name: 'chrome-nowindow', h2: { connectionWindowIncrement: 0 } });
    const res = await session({ impersonate: mine, tls: { ca: fx.caPem } }).request(`https://localhost:${srv.port}/`);
    expect(res.info.h2Fingerprint!.split('|')[1]).toBe('00');
  });
});

describe('profileFingerprint', () => {
  it('reports target vs sent side by side (TLS, HTTP/2 preface, both header orders), with a reason for each difference', async () => {
    const r = await profileFingerprint('chrome');
    const p = profiles.chrome!;
    expect(r.profile).toBe('chrome-149');
    expect(r.target.ja4).toBe('t13d1516h2_8daaf6152771_d8a2da3f94cd');
    const expected = EXPECTED_JA4[NODE]?.['chrome-149'];
    if (expected !== undefined) expect(r.sent.ja4).toBe(expected);
    expect(r.match.ja4Ciphers).toBe(!OPENSSL_30);
    expect(r.match.headerOrder).toBe(true);
    // HTTP/2: the Akamai string computed from the bytes the listener received is the browser's.
    expect(r.target.akamaiH2).toBe(p.targets.akamaiH2);
    expect(r.sent.akamaiH2).toBe(p.targets.akamaiH2);
    expect(r.sent.akamaiH2SelfReport).toBe(r.sent.akamaiH2);
    expect(r.match.akamaiH2).toBe(true);
    expect(r.sent.h2HeadersPriority).toEqual({ ...p.h2.headersPriority });
    expect(r.target.h2HeaderOrder).toEqual(p.headers.map(([h]) => h));
    expect(r.sent.h2HeaderOrder).toEqual(r.target.h2HeaderOrder);
    expect(r.match.h2HeaderOrder).toBe(true);
    expect(r.sent.h2Headers.find(([h]) => h === 'user-agent')?.[1]).toBe(p.headers.find(([h]) => h === 'user-agent')![1]);
    expect(r.differences.filter((d) => d.part.startsWith('http2') || d.part.startsWith('h2headers') || d.part === 'tls.alpn')).toEqual([]);
    expect(r.differences.some((d) => d.what.includes('17613'))).toBe(true);
    expect(r.differences.some((d) => d.what.includes('extension 27 '))).toBe(!CERT_COMPRESSION);
    for (const d of r.differences) expect(d.reason.length).toBeGreaterThan(5);
  });

  it('names what differs on HTTP/2: nothing for Firefox (te included); a derived h2 section that leaves the target', async () => {
    const ff = await profileFingerprint('firefox');
    expect(ff.sent.akamaiH2).toBe(profiles.firefox!.targets.akamaiH2);
    expect(ff.match.h2HeaderOrder).toBe(true);
    expect(ff.sent.h2HeaderOrder).toEqual(ff.target.h2HeaderOrder);
    expect(ff.differences.filter((d) => d.part.startsWith('h2') || d.part.startsWith('http2'))).toEqual([]);

    const mine = profiles.safari!.with({
      name: 'safari-mine',
      h2: { settings: [[4, 65535]], pseudoHeaderOrder: [':method', ':path', ':authority', ':scheme'] },
    });
    const r = await profileFingerprint(mine);
    expect(r.sent.akamaiH2).toBe('4:65535|10420225|0|m,p,a,s');
    expect(r.match.akamaiH2).toBe(false);
    const d = r.differences.filter((x) => x.part === 'http2');
    expect(d.map((x) => x.what)).toEqual([`Akamai 4:65535|10420225|0|m,p,a,s instead of ${profiles.safari!.targets.akamaiH2}`]);
    expect(d[0]!.reason).toMatch(/profile's h2 section .* differs from its target/);
  });
});

describe('uvfetch fingerprint (CLI)', () => {
  beforeAll(() => ensureCliBuilt(), 120_000);

  it('--impersonate firefox prints target and sent side by side and the differences', async () => {
    const r = await runCli(['fingerprint', '--impersonate', 'firefox']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^profile firefox-141 on Node v/);
    expect(r.stdout).toContain('target  t13d1717h2_5b57614c22b0_3cbfd9057e0d');
    const expected = EXPECTED_JA4[NODE]?.['firefox-141'];
    if (expected !== undefined) expect(r.stdout).toContain(`sent    ${expected}`);
    expect(r.stdout).toContain('extension 34 (delegated_credentials) not sent');
    const ak = '1:65536;2:0;4:131072;5:16384|12517377|0|m,p,a,s';
    expect(r.stdout).toContain(`Akamai HTTP/2\n  target  ${ak}\n  sent    ${ak}\n  → same`);
    expect(r.stdout).toMatch(/HTTP\/2 header order\n {2}target {2}user-agent, .*, priority, te\n {2}sent {4}user-agent, .*, priority, te\n {2}→ same/);
    expect(r.stdout).not.toContain('te not sent on HTTP/2');
  });

  it('--json, and bad command lines exit 2 with the usage', async () => {
    const r = await runCli(['fingerprint', '--impersonate', 'safari', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).profile).toBe('safari-26');
    const bad = await runCli(['fingerprint', '--impersonate', 'lynx']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown profile 'lynx'/);
    expect((await runCli(['fingerprint'])).code).toBe(2);
  });
});
