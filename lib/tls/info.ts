// Decoding of the engine's TlsInfo event payload (native/binding/engine_wrap.cc on_tls_info): the
// fields in the order listed below, each NUL-terminated. The one place that knows that order.
import type { TlsInfo } from './types.js';

/** Field names of the TlsInfo payload, in wire order. */
export const TLS_INFO_FIELDS = [
  'protocol',
  'cipher',
  'cipherStandardName',
  'alpn',
  'group',
  'authorizationError',
  'servername',
  'ja3',
  'ja3Hash',
  'ja4',
  'subject',
  'issuer',
  'subjectaltname',
  'validFrom',
  'validTo',
  'fingerprint256',
  'serialNumber',
  'origin',
] as const;

type Field = (typeof TLS_INFO_FIELDS)[number];

/** TlsInfo flag bits (the record's `a`). */
export const enum TlsInfoFlag {
  Resumed = 1,
  Authorized = 2,
}

/** The payload's fields by name. */
export function tlsInfoFields(payload: string): Record<Field, string> {
  const f = payload.split('\0');
  const out = {} as Record<Field, string>;
  for (let i = 0; i < TLS_INFO_FIELDS.length; i++) out[TLS_INFO_FIELDS[i]!] = f[i] ?? '';
  return out;
}

/** Decodes a TlsInfo event: `flags` (TlsInfoFlag bits) and its payload. */
export function decodeTlsInfo(flags: number, payload: string): { info: TlsInfo; origin: string } {
  const f = tlsInfoFields(payload);
  const authorized = (flags & TlsInfoFlag.Authorized) !== 0;
  const hasCert = f.subject !== '' || f.fingerprint256 !== '';
  const info: TlsInfo = {
    protocol: f.protocol,
    cipher: f.cipher,
    cipherStandardName: f.cipherStandardName,
    alpn: f.alpn,
    group: f.group,
    resumed: (flags & TlsInfoFlag.Resumed) !== 0,
    authorized,
    authorizationError: authorized ? undefined : f.authorizationError,
    servername: f.servername,
    ja3: f.ja3,
    ja3Hash: f.ja3Hash,
    ja4: f.ja4,
    peerCertificate: hasCert
      ? {
          subject: f.subject,
          issuer: f.issuer,
          subjectaltname: f.subjectaltname,
          validFrom: f.validFrom,
          validTo: f.validTo,
          fingerprint256: f.fingerprint256,
          serialNumber: f.serialNumber,
        }
      : null,
  };
  return { info, origin: f.origin };
}
