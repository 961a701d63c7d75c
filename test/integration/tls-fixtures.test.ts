// Tests of the TLS test helpers themselves: the certificates from tls-fixtures.ts verify (or fail)
// as intended with node:tls, and client-hello.ts parses and fingerprints ClientHellos correctly
// (the FoxIO JA4 spec example, a fixed openssl s_client capture shared with the native test, live
// hellos from node:tls and openssl s_client) while its capturing server serves real HTTPS.
// Everything runs on 127.0.0.1 against servers started here.

import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as https from 'node:https';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ClientHelloError,
  handshakeRecordsLength,
  isGrease,
  ja3,
  ja4,
  ja4Raw,
  parseClientHelloMessage,
  parseClientHelloRecords,
  startCapturingTlsServer,
  type CapturingTlsServer,
  type CapturingTlsServerOptions,
} from '../helpers/client-hello.js';
import { tlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.js';

let fx: TlsFixtures;
beforeAll(async () => {
  fx = await tlsFixtures();
});

const servers: CapturingTlsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function serve(opts: CapturingTlsServerOptions): Promise<CapturingTlsServer> {
  const s = await startCapturingTlsServer(opts);
  servers.push(s);
  return s;
}

interface Outcome {
  ok: boolean;
  code?: string;
  /** The client's getEphemeralKeyInfo(), read at secureConnect. */
  ephemeral?: object | null;
  session?: Buffer;
}

/**
 * Connects, sends a GET and waits for the first response bytes: ok means the server answered.
 * A node:tls server with rejectUnauthorized checks the client certificate only after the
 * handshake and then just closes (no alert), so that shows up as EOF_AFTER_HANDSHAKE.
 */
function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    let session: Buffer | undefined;
    let answered = false;
    let done = false;
    const sock = tls.connect({ host: '127.0.0.1', port, ...opts });
    const timer = setTimeout(() => finish({ ok: false, code: 'TEST_TIMEOUT' }), 5000);
    let ephemeral: object | null = null;
    function finish(o: Outcome) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...o, session, ephemeral });
    }
    sock.on('session', (s) => (session = s));
    sock.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, code: e.code }));
    sock.on('secureConnect', () => {
      ephemeral = sock.getEphemeralKeyInfo();
      sock.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      // Give the TLS 1.3 session tickets a moment to arrive with the response.
      sock.once('data', () => {
        answered = true;
        setTimeout(() => finish({ ok: true }), 20);
      });
      sock.once('end', () => finish(answered ? { ok: true } : { ok: false, code: 'EOF_AFTER_HANDSHAKE' }));
    });
  });
}

// ---- ClientHello builder (for the spec example) --------------------------------------------

const u16 = (v: number) => Buffer.from([v >> 8, v & 0xff]);
const vec8 = (b: Buffer) => Buffer.concat([Buffer.from([b.length]), b]);
const vec16 = (b: Buffer) => Buffer.concat([u16(b.length), b]);
const u16s = (v: number[]) => Buffer.concat(v.map(u16));
function helloMessage(ciphers: number[], exts: [number, Buffer][], version = 0x0303): Buffer {
  const body = Buffer.concat([
    u16(version),
    Buffer.alloc(32, 1),
    vec8(Buffer.alloc(32, 2)),
    vec16(u16s(ciphers)),
    vec8(Buffer.from([0])),
    vec16(Buffer.concat(exts.map(([t, d]) => Buffer.concat([u16(t), vec16(d)])))),
  ]);
  return Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
}
function records(msg: Buffer, chunk: number): Buffer {
  const out: Buffer[] = [];
  for (let off = 0; off < msg.length; off += chunk) {
    const frag = msg.subarray(off, off + chunk);
    out.push(Buffer.from([22, 3, 1]), u16(frag.length), frag);
  }
  return Buffer.concat(out);
}
// The JA4 spec's example hello, with GREASE sprinkled in.
function specExample(): Buffer {
  const alpn = vec16(Buffer.concat([vec8(Buffer.from('h2')), vec8(Buffer.from('http/1.1'))]));
  return helloMessage(
    [0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035],
    [
      [0x1a1a, Buffer.alloc(0)],
      [0x001b, vec8(u16(2))],
      [0x0000, vec16(Buffer.concat([Buffer.from([0]), vec16(Buffer.from('example.com'))]))],
      [0x0033, vec16(Buffer.concat([u16(0x2a2a), vec16(Buffer.alloc(1)), u16(0x001d), vec16(Buffer.alloc(32))]))],
      [0x0010, alpn],
      [0x4469, vec16(vec8(Buffer.from('h2')))],
      [0x0017, Buffer.alloc(0)],
      [0x002d, vec8(Buffer.from([1]))],
      [0x000d, vec16(u16s([0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]))],
      [0x0005, Buffer.from([1, 0, 0, 0, 0])],
      [0x0023, Buffer.alloc(0)],
      [0x0012, Buffer.alloc(0)],
      [0x002b, vec8(u16s([0x3a3a, 0x0304, 0x0303]))],
      [0xff01, Buffer.from([0])],
      [0x000b, vec8(Buffer.from([0]))],
      [0x000a, vec16(u16s([0x4a4a, 0x001d, 0x0017, 0x0018]))],
      [0x0015, Buffer.alloc(7)],
      [0x5a5a, Buffer.from([0])],
    ],
  );
}

// Same bytes as kOpensslHelloRecords in native/test/test_client_hello.cc (openssl 3.0.19 s_client
// -servername localhost -alpn h2,http/1.1); both implementations must agree on its fingerprints.
const OPENSSL_HELLO = Buffer.from(
  '16030101480100014403037bc5789dca1b18e75f8dd62f61fa58f3e24c3113ddea49ec491338859e77ccc720047db0b2' +
    '2caa0b4d64f22a03373d14a52e62cb33971c0c1f9fa021cd42a5c22d003e130213031301c02cc030009fcca9cca8ccaa' +
    'c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000bd' +
    '0000000e000c0000096c6f63616c686f7374000b000403000102000a00160014001d0017001e00190018010001010102' +
    '01030104002300000010000e000c02683208687474702f312e310016000000170000000d002a00280403050306030807' +
    '08080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00' +
    '020101003300260024001d00201c91137fefc5d9f29c82479f8560cde8d22f9ce88b9d9403ed2c76b9465ba97d',
  'hex',
);

describe('client-hello.ts parser and fingerprints', () => {
  it('GREASE: exactly the 16 RFC 8701 values', () => {
    const all = Array.from({ length: 0x10000 }, (_, i) => i).filter(isGrease);
    expect(all).toHaveLength(16);
    expect(all[0]).toBe(0x0a0a);
    expect(all[15]).toBe(0xfafa);
  });

  it('JA4 spec example: t13d1516h2_8daaf6152771_e5627efa2ab1, and the same from any record split', () => {
    const msg = specExample();
    const h = parseClientHelloMessage(msg);
    expect(h.sni).toBe('example.com');
    expect(h.alpn).toEqual(['h2', 'http/1.1']);
    expect(h.keyShareGroups).toEqual([0x2a2a, 0x001d]);
    expect(ja4(h)).toBe('t13d1516h2_8daaf6152771_e5627efa2ab1');
    expect(ja4Raw(h)).toBe(
      't13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_' +
        '0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601',
    );
    expect(ja4({ ...h, sigalgs: [] })).toBe('t13d1516h2_8daaf6152771_6d807ffa2a79'); // spec: no trailing '_'
    expect(ja3(h).ja3).toBe(
      '771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,' + '27-0-51-16-17513-23-45-13-5-35-18-43-65281-11-10-21,29-23-24,0',
    );
    for (const chunk of [1, 2, 3, 5, 64, msg.length]) {
      const recs = records(msg, chunk);
      expect(handshakeRecordsLength(recs)).toBe(recs.length);
      expect(handshakeRecordsLength(recs.subarray(0, recs.length - 1))).toBe(0);
      expect(ja4(parseClientHelloRecords(recs))).toBe('t13d1516h2_8daaf6152771_e5627efa2ab1');
    }
  });

  it('JA3 README vector and JA4 ALPN rules', () => {
    const s = '769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0';
    expect(crypto.createHash('md5').update(s).digest('hex')).toBe('ada70206e40642a3e4461f35503241d5');
    const alpnOf = (proto: Buffer) => ja4(parseClientHelloMessage(helloMessage([0x002f], [[0x0010, vec16(vec8(proto))]]))).slice(8, 10);
    expect(alpnOf(Buffer.from('http/1.1'))).toBe('h1');
    expect(alpnOf(Buffer.from([0xab]))).toBe('ab');
    expect(alpnOf(Buffer.from([0xab, 0xcd]))).toBe('ad');
    expect(alpnOf(Buffer.from([0x30, 0xab]))).toBe('3b');
    expect(alpnOf(Buffer.from([0x30, 0x31, 0xab, 0xcd]))).toBe('3d');
    expect(alpnOf(Buffer.from([0x30, 0xab, 0xcd, 0x31]))).toBe('01');
    const bare = parseClientHelloMessage(helloMessage([0x002f], []));
    expect(ja4(bare)).toBe(`t12i010000_${crypto.createHash('sha256').update('002f').digest('hex').slice(0, 12)}_000000000000`);
  });

  it('the fixed openssl s_client capture fingerprints exactly as the native implementation', () => {
    const h = parseClientHelloRecords(OPENSSL_HELLO);
    expect(h.sni).toBe('localhost');
    expect(h.ciphers).toHaveLength(31);
    expect(h.supportedVersions).toEqual([0x0304, 0x0303, 0x0302, 0x0301]);
    expect(ja3(h).ja3Hash).toBe('5a1edc7f170af1014fc65c994878e63c');
    expect(ja4(h)).toBe('t13d3111h2_e8f1e7e78f70_1f22a2ca17c4');
  });

  it('rejects malformed hellos: truncation, trailing bytes, duplicates, wrong record type', () => {
    const msg = specExample();
    for (let k = 0; k < msg.length; k++) {
      expect(() => parseClientHelloMessage(msg.subarray(0, k))).toThrow(ClientHelloError);
    }
    expect(() => parseClientHelloMessage(Buffer.concat([msg, Buffer.from([0])]))).toThrow(ClientHelloError);
    expect(() =>
      parseClientHelloMessage(
        helloMessage(
          [0x002f],
          [
            [0x17, Buffer.alloc(0)],
            [0x17, Buffer.alloc(0)],
          ],
        ),
      ),
    ).toThrow(/twice/);
    expect(() => parseClientHelloMessage(helloMessage([0x002f], [[0x000a, Buffer.from([0, 2, 0, 0x1d, 9])]]))).toThrow(/trailing/);
    expect(handshakeRecordsLength(Buffer.from('GET / HTTP/1.1\r\n'))).toBe(-1);
    expect(handshakeRecordsLength(Buffer.from([22, 3]))).toBe(0);
    expect(() => parseClientHelloRecords(records(Buffer.concat([msg, Buffer.from('x')]), 20000))).toThrow(/shares/);
  });
});

describe('tls-fixtures.ts certificates', () => {
  it('are PEM, EC P-256, with the intended names and dates', async () => {
    const server = new crypto.X509Certificate(fx.server.cert);
    const ca = new crypto.X509Certificate(fx.caPem);
    expect(server.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(crypto.createPrivateKey(fx.server.key).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(server.checkPrivateKey(crypto.createPrivateKey(fx.server.key))).toBe(true);

    const expired = new crypto.X509Certificate(fx.expired.cert);
    expect(new Date(expired.validTo).toISOString()).toBe('2020-01-02T00:00:00.000Z');
    expect(expired.checkIssued(ca)).toBe(true);
    expect(new crypto.X509Certificate(fx.wrongHost.cert).subjectAltName).toBe('DNS:wrong.example');
    const self = new crypto.X509Certificate(fx.selfSigned.cert);
    expect(self.issuer).toBe(self.subject);
    expect(self.verify(self.publicKey)).toBe(true);
    expect(self.checkIssued(ca)).toBe(false);

    const client = new crypto.X509Certificate(fx.client.cert);
    expect(client.checkIssued(new crypto.X509Certificate(fx.clientCa))).toBe(true);
    expect(client.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // clientAuth
    expect(fx.clientEncrypted.key).toContain('ENCRYPTED PRIVATE KEY');
    expect(() => crypto.createPrivateKey(fx.clientEncrypted.key)).toThrow();
    const decrypted = crypto.createPrivateKey({ key: fx.clientEncrypted.key, passphrase: fx.clientEncrypted.passphrase });
    expect(client.checkPrivateKey(decrypted)).toBe(true);
    expect(path.basename(fx.dir)).toMatch(/^uvf-tls-/);
    expect(await tlsFixtures()).toBe(fx); // generated once per process
  });

  it('verify with node:tls as intended', async () => {
    const trusted = await serve({ ...fx.server });
    expect((await handshake(trusted.port, { servername: 'localhost', ca: fx.caPem })).ok).toBe(true);
    expect((await handshake(trusted.port, { ca: fx.caPem })).ok).toBe(true); // IP SAN 127.0.0.1
    expect((await handshake(trusted.port, { servername: 'localhost' })).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');

    const expired = await serve({ ...fx.expired });
    expect((await handshake(expired.port, { servername: 'localhost', ca: fx.caPem })).code).toBe('CERT_HAS_EXPIRED');

    const wrong = await serve({ ...fx.wrongHost });
    expect((await handshake(wrong.port, { servername: 'localhost', ca: fx.caPem })).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');

    const self = await serve({ ...fx.selfSigned });
    expect((await handshake(self.port, { servername: 'localhost', ca: fx.caPem })).code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect((await handshake(self.port, { servername: 'localhost', ca: fx.selfSigned.cert })).ok).toBe(true);
  });

  it('client certificates: accepted by requestCert + rejectUnauthorized, plain or with an encrypted key', async () => {
    const srv = await serve({ ...fx.server, requestCert: true, rejectUnauthorized: true, ca: fx.clientCa });
    const base = { servername: 'localhost', ca: fx.caPem };
    expect((await handshake(srv.port, { ...base, ...fx.client })).ok).toBe(true);
    expect((await handshake(srv.port, { ...base, ...fx.clientEncrypted })).ok).toBe(true);
    expect(srv.sessions).toHaveLength(2);
    for (const s of srv.sessions) {
      expect(s.authorized).toBe(true);
      expect(s.peerSubject).toMatchObject({ CN: 'uvfetch test client' });
    }
    const without = await handshake(srv.port, base);
    expect(without.ok).toBe(false);
    expect(without.code).toMatch(/CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|ECONNRESET/);
    // A client certificate from another CA (the server's own chain) is refused too: node checks it
    // after the handshake and closes without an alert.
    const foreign = await handshake(srv.port, { ...base, ...fx.server });
    expect(foreign).toMatchObject({ ok: false, code: 'EOF_AFTER_HANDSHAKE' });
    expect(srv.sessions).toHaveLength(2);
  });
});

describe('capturing TLS server', () => {
  it('records node:tls hellos with the configured ciphers and groups, in order, and the group the server chose', async () => {
    // The server's groups are set (one list, no preference tuples), so it takes the client's
    // P-384 key share on every OpenSSL; what Node's default server groups do differs by OpenSSL
    // version (next test).
    const srv = await serve({ ...fx.server, ALPNProtocols: ['http/1.1'], ecdhCurve: 'X25519:P-256:P-384' });
    const r = await handshake(srv.port, {
      servername: 'localhost',
      ca: fx.caPem,
      ciphers: 'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256',
      ecdhCurve: 'P-384:X25519:P-256',
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    expect(r.ok).toBe(true);
    expect(srv.hellos).toHaveLength(1);
    const h = parseClientHelloRecords(srv.hellos[0]!);
    expect(h.ciphers.filter((c) => c !== 0x00ff)).toEqual([0x1303, 0x1301, 0xc02c, 0xc02b]);
    expect(h.groups).toEqual([0x0018, 0x001d, 0x0017]);
    expect(h.keyShareGroups).toEqual([0x0018]);
    expect(h.sni).toBe('localhost');
    expect(h.alpn).toEqual(['h2', 'http/1.1']);
    expect(ja4(h)).toMatch(/^t13d0\d\d\dh2_[0-9a-f]{12}_[0-9a-f]{12}$/);
    expect(ja3(h).ja3).toMatch(/^771,4867-4865-49196-49195(-255)?,[\d-]+,24-29-23,0-1-2$/);

    expect(srv.sessions).toHaveLength(1);
    const s = srv.sessions[0]!;
    expect(s.helloIndex).toBe(0);
    expect(s.clientHello?.groups).toEqual(h.groups);
    expect(s.protocol).toBe('TLSv1.3');
    expect(s.cipher.standardName).toBe('TLS_CHACHA20_POLY1305_SHA256');
    expect(s.alpnProtocol).toBe('http/1.1');
    expect(s.servername).toBe('localhost');
    expect(s.sessionReused).toBe(false);
    expect(s.negotiatedGroupName).toBe('secp384r1');
    expect(s.serverHello).toMatchObject({ version: 0x0304, cipher: 0x1303, group: 0x0018, helloRetryRequest: false });
    // The client's own view agrees.
    expect(r.ephemeral).toMatchObject({ name: 'secp384r1' });
  });

  // OpenSSL-version dependent (the OpenSSL Node is built with: process.versions.openssl).
  // Node's default server groups: OpenSSL 3.0 (Node 20) takes any key share the client sent for
  // a group it supports; OpenSSL 3.5 (Node 22, 24, 26) ranks its default groups in preference
  // tuples (X25519MLKEM768, then X25519 and P-256, then X448, P-384, P-521, ...) and answers a
  // client offering P-384 first, X25519 too, with a HelloRetryRequest for X25519.
  it(`records the group Node's default server picks for a client preferring P-384 (OpenSSL ${process.versions.openssl})`, async () => {
    const [major, minor] = process.versions.openssl.split('.').map(Number) as [number, number];
    const expected =
      major === 3 && minor < 5
        ? { group: 'secp384r1', id: 0x0018, helloRetryRequest: false }
        : major === 3 && minor >= 5
          ? { group: 'x25519', id: 0x001d, helloRetryRequest: true }
          : null;
    if (expected === null) throw new Error(`no expectation recorded for OpenSSL ${process.versions.openssl}: add it here and to the README`);
    const srv = await serve({ ...fx.server });
    const r = await handshake(srv.port, { servername: 'localhost', ca: fx.caPem, ecdhCurve: 'P-384:X25519:P-256' });
    expect(r.ok).toBe(true);
    expect(parseClientHelloRecords(srv.hellos[0]!).keyShareGroups).toEqual([0x0018]);
    expect(srv.sessions).toHaveLength(1);
    expect(srv.sessions[0]!.negotiatedGroupName).toBe(expected.group);
    expect(srv.sessions[0]!.serverHello).toMatchObject({ version: 0x0304, group: expected.id, helloRetryRequest: expected.helloRetryRequest });
    expect(r.ephemeral).toMatchObject({ name: expected.group === 'x25519' ? 'X25519' : 'secp384r1' });
  });

  it('sees TLS 1.2 ECDHE groups through the ServerKeyExchange, and a key-share miss as a HelloRetryRequest', async () => {
    const srv = await serve({ ...fx.server, ecdhCurve: 'X25519' });
    const r12 = await handshake(srv.port, {
      ca: fx.caPem,
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
      ecdhCurve: 'P-256:X25519',
    });
    expect(r12.ok).toBe(true);
    const h = parseClientHelloRecords(srv.hellos[0]!);
    expect(h.sni).toBeNull(); // node sends no SNI for an IP host
    expect(ja4(h).slice(0, 4)).toBe('t12i');
    expect(srv.sessions[0]).toMatchObject({ protocol: 'TLSv1.2', negotiatedGroupName: 'x25519' });

    const r13 = await handshake(srv.port, { ca: fx.caPem, ecdhCurve: 'P-256:X25519' });
    expect(r13.ok).toBe(true);
    expect(parseClientHelloRecords(srv.hellos[1]!).keyShareGroups).toEqual([0x0017]);
    expect(srv.sessions[1]).toMatchObject({ protocol: 'TLSv1.3', negotiatedGroupName: 'x25519' });
    expect(srv.sessions[1]!.serverHello?.helloRetryRequest).toBe(true);
    // Node's server-side getEphemeralKeyInfo() has nothing to say (documented as client-only).
    expect(srv.sessions[1]!.ephemeralKeyInfo ?? {}).toEqual({});
  });

  it('serves real HTTPS responses and reports session resumption', async () => {
    const srv = await serve({ ...fx.server });
    const get = (session?: Buffer) =>
      new Promise<{ status: number; body: string; reused: boolean; session?: Buffer }>((resolve, reject) => {
        let tlsSession: Buffer | undefined;
        // `session` is passed through to tls.connect (missing from @types/node's RequestOptions).
        const options: https.RequestOptions & { session?: Buffer } = {
          host: '127.0.0.1',
          port: srv.port,
          path: '/',
          servername: 'localhost',
          ca: fx.caPem,
          agent: false,
          session,
        };
        const req = https.get(options, (res) => {
          const socket = res.socket as tls.TLSSocket;
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode!,
              body: Buffer.concat(chunks).toString(),
              reused: socket.isSessionReused(),
              session: tlsSession,
            }),
          );
        });
        req.on('socket', (s) => s.on('session', (b: Buffer) => (tlsSession = b)));
        req.on('error', reject);
        req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      });
    const first = await get();
    expect(first).toMatchObject({ status: 200, body: 'hello', reused: false });
    expect(first.session).toBeInstanceOf(Buffer);
    const second = await get(first.session);
    expect(second).toMatchObject({ status: 200, body: 'hello', reused: true });
    expect(srv.sessions.map((s) => s.sessionReused)).toEqual([false, true]);
    // A resuming hello carries pre_shared_key (41), always last.
    expect(parseClientHelloRecords(srv.hellos[1]!).extensions.at(-1)).toBe(41);
  });

  it('captures an openssl s_client hello and answers it', async () => {
    const srv = await serve({ ...fx.server, handler: (_req, res) => res.end('from-handler') });
    const out = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${srv.port}`,
          '-servername',
          'localhost',
          '-alpn',
          'h2,http/1.1',
          '-CAfile',
          path.join(fx.dir, 'ca.pem'),
          '-verify_return_error',
          '-quiet',
          '-ign_eof',
        ],
        { timeout: 10_000 },
        (err, stdout) => (err && !stdout ? reject(err) : resolve(stdout)),
      );
      child.stdin!.end('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    expect(out).toContain('from-handler');
    const h = parseClientHelloRecords(srv.hellos[0]!);
    expect(h.sni).toBe('localhost');
    expect(h.alpn).toEqual(['h2', 'http/1.1']);
    expect(ja4(h)).toMatch(/^t13d\d{4}h2_/);
    expect(srv.sessions[0]).toMatchObject({ protocol: 'TLSv1.3', servername: 'localhost', negotiatedGroupName: 'x25519' });
  });

  it('drops connections that do not start with a ClientHello, and close() ends everything', async () => {
    const srv = await serve({ ...fx.server });
    const net = await import('node:net');
    const closedByServer = await new Promise<boolean>((resolve) => {
      const c = net.connect(srv.port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\n\r\n'));
      c.on('close', () => resolve(true));
      c.on('error', () => {});
      setTimeout(() => resolve(false), 3000);
    });
    expect(closedByServer).toBe(true);
    expect(srv.hellos).toHaveLength(0);

    // An idle TLS connection and a half-sent hello are both ended by close().
    const idle = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'localhost', ca: fx.caPem });
    await new Promise<void>((r) => idle.once('secureConnect', () => r()));
    const partial = net.connect(srv.port, '127.0.0.1', () => partial.write(Buffer.from([22, 3, 1, 0, 50, 1])));
    partial.on('error', () => {});
    idle.on('error', () => {});
    await new Promise((r) => setTimeout(r, 50));
    const ended = Promise.all([idle, partial].map((s) => new Promise((r) => s.once('close', r))));
    await srv.close();
    await ended;
    const refused = await new Promise<string | undefined>((resolve) => {
      const c = net.connect(srv.port, '127.0.0.1', () => resolve('connected'));
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
