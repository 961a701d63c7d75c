// The Session's `http2` and `h2` options, validated into what the engine takes (engine_wrap.cc
// reads them; the core checks them again: http2::validate_options).
import { invalidOption, UvfetchError } from '../core/errors.js';
import { checkKeys, intOpt, MAX_TIMER, objectOpt } from '../core/options.js';
import { binding, type NativeHttp2Options } from '../native/binding.js';
import type { H2Profile } from '../profiles/types.js';
import type { H2Options } from './types.js';

const H2_KEYS: ReadonlySet<string> = new Set([
  'settings',
  'connectionWindowIncrement',
  'priorityFrames',
  'headersPriority',
  'pseudoHeaderOrder',
  'maxStreamsPerConnection',
  'pingInterval',
  'settingsTimeout',
]);

/** SETTINGS names (RFC 9113 §6.5.2, RFC 8441, RFC 9218) → ids. */
const SETTING_IDS: ReadonlyMap<string, number> = new Map([
  ['HEADER_TABLE_SIZE', 1],
  ['ENABLE_PUSH', 2],
  ['MAX_CONCURRENT_STREAMS', 3],
  ['INITIAL_WINDOW_SIZE', 4],
  ['MAX_FRAME_SIZE', 5],
  ['MAX_HEADER_LIST_SIZE', 6],
  ['ENABLE_CONNECT_PROTOCOL', 8],
  ['NO_RFC7540_PRIORITIES', 9],
]);

const PSEUDO: ReadonlyMap<string, string> = new Map([
  ['method', 'm'],
  ['authority', 'a'],
  ['scheme', 's'],
  ['path', 'p'],
]);

/** The id of a SETTINGS name ('HEADER_TABLE_SIZE', 'SETTINGS_ENABLE_PUSH', any case) or number. */
export function settingId(v: unknown, name: string): number {
  if (typeof v === 'number') return intOpt(v, name, 0, 1, 0xffff);
  if (typeof v === 'string') {
    const key = v.toUpperCase().replace(/^SETTINGS_/, '');
    const id = SETTING_IDS.get(key) ?? (/^\d+$/.test(v) ? Number(v) : undefined);
    if (id !== undefined && id >= 1 && id <= 0xffff) return id;
  }
  throw invalidOption(name, 'expected a SETTINGS name (e.g. HEADER_TABLE_SIZE) or an id 1..65535');
}

function priority(v: unknown, name: string, frame: boolean): number[] {
  objectOpt(v, name);
  const p = v as { streamId?: unknown; dependsOn?: unknown; weight?: unknown; exclusive?: unknown };
  checkKeys(p, frame ? new Set(['streamId', 'dependsOn', 'weight', 'exclusive']) : new Set(['dependsOn', 'weight', 'exclusive']), `${name}.`);
  const out: number[] = [];
  if (frame) {
    if (p.streamId === undefined) throw invalidOption(`${name}.streamId`, 'required');
    out.push(intOpt(p.streamId, `${name}.streamId`, 0, 1, 0x7fffffff));
  }
  const dep = intOpt(p.dependsOn, `${name}.dependsOn`, 0, 0, 0x7fffffff);
  if (frame && dep === out[0]) throw invalidOption(`${name}.dependsOn`, 'a stream cannot depend on itself');
  if (p.weight === undefined) throw invalidOption(`${name}.weight`, 'required (1..256)');
  const weight = intOpt(p.weight, `${name}.weight`, 16, 1, 256);
  if (p.exclusive !== undefined && typeof p.exclusive !== 'boolean') throw invalidOption(`${name}.exclusive`, 'expected a boolean');
  out.push(dep, weight, p.exclusive === true ? 1 : 0);
  return out;
}

/** The engine's HTTP/2 options, and whether https connections should offer h2 by ALPN. */
export interface ValidatedHttp2 {
  native: NativeHttp2Options;
  /** Offer h2 by ALPN (with a TLS profile that does not choose its own ALPN list). */
  offer: boolean;
}

/**
 * `http2` and `h2` as Session options. `profile`: the impersonated browser's HTTP/2 preface, the
 * defaults of every `h2` field the user leaves out.
 */
export function http2Options(
  http2: unknown,
  h2: unknown,
  profile?: H2Profile,
  profileHeaderOrder?: readonly string[],
  profileH2Only?: readonly string[],
): ValidatedHttp2 {
  if (http2 !== undefined && typeof http2 !== 'boolean' && http2 !== 'prior-knowledge') {
    throw invalidOption('http2', "expected true, false or 'prior-knowledge'");
  }
  const available = binding.http2Available();
  if (!available && (http2 === true || http2 === 'prior-knowledge')) {
    throw new UvfetchError('ERR_HTTP2_UNAVAILABLE', 'HTTP/2 is unavailable: this Node exports no nghttp2 (HTTP/1.1 works)', {
      reason: `Node ${process.versions.node}`,
    });
  }
  const mode: 0 | 1 | 2 = !available || http2 === false ? 0 : http2 === 'prior-knowledge' ? 2 : 1;
  const native: NativeHttp2Options = { mode };
  const o = (h2 ?? {}) as H2Options;
  if (h2 !== undefined) {
    objectOpt(h2, 'h2');
    checkKeys(h2 as object, H2_KEYS, 'h2.');
  }
  native.maxStreams = intOpt(o.maxStreamsPerConnection, 'h2.maxStreamsPerConnection', 100, 1, 0x7fffffff);
  native.pingInterval = intOpt(o.pingInterval, 'h2.pingInterval', 0, 0, MAX_TIMER);
  native.settingsTimeout = intOpt(o.settingsTimeout, 'h2.settingsTimeout', 10_000, 0, MAX_TIMER);

  const settings = o.settings ?? profile?.settings;
  if (settings !== undefined) {
    if (!Array.isArray(settings) || settings.length > 64) throw invalidOption('h2.settings', 'expected an array of [name or id, value] (at most 64)');
    const flat: number[] = [];
    settings.forEach((e: unknown, i: number) => {
      const n = `h2.settings[${i}]`;
      if (!Array.isArray(e) || e.length !== 2) throw invalidOption(n, 'expected [name or id, value]');
      flat.push(settingId(e[0], n), intOpt(e[1], n, 0, 0, 0xffffffff));
    });
    native.settings = flat;
  }
  const inc = o.connectionWindowIncrement ?? profile?.connectionWindowIncrement;
  if (inc !== undefined) native.connectionWindowIncrement = intOpt(inc, 'h2.connectionWindowIncrement', 0, 0, 0x7fffffff - 65535);
  const frames = o.priorityFrames ?? profile?.priorityFrames;
  if (frames !== undefined) {
    if (!Array.isArray(frames) || frames.length > 256) throw invalidOption('h2.priorityFrames', 'expected an array (at most 256)');
    native.priorityFrames = frames.flatMap((f: unknown, i: number) => priority(f, `h2.priorityFrames[${i}]`, true));
  }
  const hp = o.headersPriority !== undefined ? o.headersPriority : profile?.headersPriority;
  if (hp !== undefined && hp !== null) native.headersPriority = priority(hp, 'h2.headersPriority', false) as [number, number, number];
  const order = o.pseudoHeaderOrder ?? profile?.pseudoHeaderOrder;
  if (order !== undefined) {
    const letters = Array.isArray(order) ? order.map((p: unknown) => (typeof p === 'string' ? PSEUDO.get(p.replace(/^:/, '')) : undefined)) : [];
    if (letters.length !== 4 || letters.includes(undefined) || new Set(letters).size !== 4) {
      throw invalidOption('h2.pseudoHeaderOrder', "expected a permutation of 'method', 'authority', 'scheme', 'path'");
    }
    native.pseudoOrder = letters.join('');
  }
  if (profileHeaderOrder !== undefined && profileHeaderOrder.length > 0) native.headerOrder = profileHeaderOrder.map((n) => n.toLowerCase());
  if (profileH2Only !== undefined && profileH2Only.length > 0) native.extraHeaders = [...profileH2Only];
  return { native, offer: mode !== 0 };
}
