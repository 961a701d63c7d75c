// The JS ↔ native wire: lib/native/wire.ts and lib/tls/info.ts must agree with the binding
// (native/binding/engine_wrap.cc), which is read here as text, and the decoder must read what the
// binding writes. Fails when either side changes alone.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ev, EventRecord, forEachRecord, Override, OVERRIDE_SLOTS, RECORD_HEADER, SubmitFlag } from '../../lib/native/wire.js';
import { decodeTlsInfo, TLS_INFO_FIELDS } from '../../lib/tls/info.js';

// The record types live in the core's encoder (native/core/client/event_batch.{h,cc}, shared with the
// I/O threads); the submit flags and override slots in the binding.
const cc =
  readFileSync(new URL('../../native/binding/engine_wrap.cc', import.meta.url), 'utf8') +
  readFileSync(new URL('../../native/core/client/event_batch.h', import.meta.url), 'utf8') +
  readFileSync(new URL('../../native/core/client/event_batch.cc', import.meta.url), 'utf8');

function constants(prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of cc.matchAll(new RegExp(`\\b${prefix}(\\w+) = (\\d+)`, 'g'))) out[m[1]!] = Number(m[2]);
  return out;
}

describe('wire constants agree with engine_wrap.cc', () => {
  it('event record types', () => {
    const ts = {
      Complete: Ev.Complete,
      Head: Ev.Head,
      Data: Ev.Data,
      End: Ev.End,
      Error: Ev.Error,
      Drain: Ev.Drain,
      Closed: Ev.Closed,
      Timings: Ev.Timings,
      TlsInfo: Ev.TlsInfo,
      TlsForget: Ev.TlsForget,
      TlsRef: Ev.TlsRef,
      DnsLookup: Ev.DnsLookup,
      DnsResult: Ev.DnsResult,
      H2Info: Ev.H2Info,
      H2Forget: Ev.H2Forget,
      Trailers: Ev.Trailers,
      RawOpen: Ev.RawOpen,
      RawData: Ev.RawData,
      RawEnd: Ev.RawEnd,
      RawError: Ev.RawError,
      RawDrain: Ev.RawDrain,
      RawClosed: Ev.RawClosed,
      RawFinished: Ev.RawFinished,
    };
    expect(constants('kEv')).toEqual(ts);
  });

  it('submit flags', () => {
    expect(constants('kFlag')).toEqual({
      StreamResponse: SubmitFlag.StreamResponse,
      StreamedBody: SubmitFlag.StreamedBody,
      HasBody: SubmitFlag.HasBody,
      Timings: SubmitFlag.Timings,
    });
  });

  it('override slots', () => {
    const native: Record<string, number> = {};
    for (const m of cc.matchAll(/pick\((\d+), spec\.(?:timeouts|limits)\.(\w+)\)/g)) native[m[2]!] = Number(m[1]);
    expect(native).toEqual({
      connect_ms: Override.ConnectTimeout,
      headers_ms: Override.HeadersTimeout,
      body_ms: Override.BodyTimeout,
      total_ms: Override.TotalTimeout,
      max_header_size: Override.MaxHeaderSize,
      max_header_count: Override.MaxHeaderCount,
      max_body_size: Override.MaxBodySize,
      tls_ms: Override.TlsTimeout,
      decompress: Override.Decompress,
      max_decompression_ratio: Override.MaxDecompressionRatio,
    });
    expect(Object.keys(native)).toHaveLength(OVERRIDE_SLOTS);
  });

  it('response meta packing (pack_meta) matches the accessors', () => {
    const body = /uint32_t pack_meta\(const ResponseMeta& m\) \{([\s\S]*?)\n\}/.exec(cc)![1]!;
    expect(body).toMatch(/version_minor & 0xf\) << 16\)/);
    expect(body).toMatch(/version_major & 0xf\) << 20\)/);
    expect(body).toMatch(/m\.reused \? 1u << 24/);
    expect(body).toMatch(/m\.attempts\) << 25\)/);
    const r = new EventRecord();
    r.a = 204 | (0 << 16) | (1 << 24) | (2 << 25);
    expect([r.status, r.httpVersionMinor, r.reused, r.attempts]).toEqual([204, 0, true, 2]);
    r.a = 200 | (1 << 16);
    expect([r.status, r.httpVersionMinor, r.reused, r.attempts]).toEqual([200, 1, false, 0]);
    r.a = 200 | (1 << 16) | (1 << 20) | (1 << 25);
    expect([r.status, r.httpVersionMajor, r.httpVersionMinor, r.attempts]).toEqual([200, 1, 1, 1]);
    r.a = 200 | (0 << 16) | (2 << 20) | (1 << 24) | (1 << 25);
    expect([r.status, r.httpVersionMajor, r.httpVersionMinor, r.reused, r.attempts]).toEqual([200, 2, 0, true, 1]);
  });

  it('timings order (on_timings)', () => {
    const order = /uint32_t v\[7\] = \{([^}]*)\}/
      .exec(cc)![1]!
      .split(',')
      .map((s) => s.trim().replace('t.', ''));
    expect(order).toEqual(['queued', 'dns', 'connect', 'ttfb', 'head', 'total', 'tls']);
  });

  it('TLS info field order (on_tls_info)', () => {
    const list = /for \(const std::string\* f :\s*\{([^}]*)\}/.exec(cc)![1]!;
    const native = [...list.matchAll(/&i\.(\w+)/g)].map((m) => m[1]);
    const camel: Record<string, string> = {
      cipher_standard: 'cipherStandardName',
      authorization_error: 'authorizationError',
      ja3_hash: 'ja3Hash',
      subject_alt_names: 'subjectaltname',
      valid_from: 'validFrom',
      valid_to: 'validTo',
      serial: 'serialNumber',
    };
    expect(native.map((n) => camel[n!] ?? n)).toEqual([...TLS_INFO_FIELDS]);
  });
});

/** A batch as push_record writes it. */
function record(type: number, id: number, a: number, b: number, p1: Buffer = Buffer.alloc(0), p2: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(RECORD_HEADER);
  [type, id, a, b, p1.length, p2.length].forEach((v, i) => {
    h.writeUInt32LE(v >>> 0, i * 4);
  });
  return Buffer.concat([h, p1, p2]);
}

describe('forEachRecord', () => {
  it('walks every record with its fields and payloads, reusing one record object', () => {
    const head = Buffer.from('HTTP/1.1 200 OK\r\n\r\n', 'latin1');
    const big = Buffer.from('big payload');
    const timings = Buffer.alloc(28);
    [1000, 2000, 3000, 4000, 5000, 6000, 7000].forEach((v, i) => {
      timings.writeUInt32LE(v, i * 4);
    });
    const batch = Buffer.concat([
      record(Ev.Timings, 7, 0, 0, timings),
      record(Ev.Complete, 7, 200 | (1 << 16), 0, head, Buffer.from('body')),
      record(Ev.Data, 8, 0, 1),
      record(Ev.Error, 9, 3, -104 >>> 0, Buffer.from('detail')),
      record(Ev.DnsLookup, 5, 2, 6, Buffer.from('example.test')),
    ]);
    const seen: unknown[] = [];
    const rec = new EventRecord();
    let same = true;
    forEachRecord(batch, [big], rec, (r) => {
      same &&= r === rec;
      switch (r.type) {
        case Ev.Timings:
          seen.push(['timings', r.id, r.timings()]);
          break;
        case Ev.Complete:
          seen.push(['complete', r.id, r.status, r.httpVersionMinor, r.text(), r.bodyCopy().toString()]);
          break;
        case Ev.Data:
          seen.push(['data', r.id, r.bodyCopy() === big, r.bodyView() === big]);
          break;
        case Ev.Error:
          seen.push(['error', r.id, r.errorIndex, r.sysErrno, r.text()]);
          break;
        case Ev.DnsLookup:
          seen.push(['lookup', r.lookupId, r.family, r.text()]);
          break;
      }
    });
    expect(same).toBe(true);
    expect(seen).toEqual([
      ['timings', 7, { queued: 1, dns: 2, connect: 3, ttfb: 4, headers: 5, total: 6, tls: 7 }],
      ['complete', 7, 200, 1, 'HTTP/1.1 200 OK\r\n\r\n', 'body'],
      ['data', 8, true, true],
      ['error', 9, 3, -104, 'detail'],
      ['lookup', 2 * 2 ** 32 + 5, 6, 'example.test'],
    ]);
    // The batch is not kept by the record after the walk.
    expect(rec.batch.length).toBe(0);
    expect(rec.bigs).toBeUndefined();
  });

  it('bodyCopy() copies out of the batch; bodyView() does not', () => {
    const batch = record(Ev.RawData, 1, 0, 0, Buffer.alloc(0), Buffer.from('xyz'));
    forEachRecord(batch, undefined, new EventRecord(), (r) => {
      const copy = r.bodyCopy();
      const view = r.bodyView();
      batch[RECORD_HEADER] = 'Q'.charCodeAt(0);
      expect(copy.toString()).toBe('xyz');
      expect(view.toString()).toBe('Qyz');
    });
  });

  it('raw open: ports and TLS info id', () => {
    forEachRecord(record(Ev.RawOpen, 3, 443 | (50000 << 16), 12, Buffer.from('1.2.3.4\0' + '5.6.7.8')), undefined, new EventRecord(), (r) => {
      expect([r.remotePort, r.localPort, r.rawTlsInfoId, r.text().split('\0')]).toEqual([443, 50000, 12, ['1.2.3.4', '5.6.7.8']]);
    });
  });
});

describe('decodeTlsInfo', () => {
  const fields = (o: Partial<Record<(typeof TLS_INFO_FIELDS)[number], string>>) => `${TLS_INFO_FIELDS.map((f) => o[f] ?? '').join('\0')}\0`;

  it('names the fields, reads the flags, builds the certificate summary', () => {
    const { info, origin } = decodeTlsInfo(
      1 | 2,
      fields({ protocol: 'TLSv1.3', alpn: 'http/1.1', subject: 'CN=x', fingerprint256: 'AA:BB', origin: 'https://x.test' }),
    );
    expect(origin).toBe('https://x.test');
    expect(info.protocol).toBe('TLSv1.3');
    expect(info.alpn).toBe('http/1.1');
    expect(info.resumed).toBe(true);
    expect(info.authorized).toBe(true);
    expect(info.authorizationError).toBeUndefined();
    expect(info.peerCertificate).toMatchObject({ subject: 'CN=x', fingerprint256: 'AA:BB' });
  });

  it('unauthorized: the error is reported; no certificate: null', () => {
    const { info } = decodeTlsInfo(0, fields({ authorizationError: 'self-signed certificate' }));
    expect(info.resumed).toBe(false);
    expect(info.authorized).toBe(false);
    expect(info.authorizationError).toBe('self-signed certificate');
    expect(info.peerCertificate).toBeNull();
  });
});
