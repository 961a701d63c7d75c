// The internal seam between a Session and the raw sockets built on its engine (lib/raw/): a
// symbol-keyed method hands out the engine, the event route and the session's defaults. Not part
// of the public API (the symbol is not exported from lib/index.ts).
import type { NativeEngine } from '../native/binding.js';
import type { EventRecord } from '../native/wire.js';
import type { TlsProfile } from '../tls/profile.js';
import type { TlsInfo } from '../tls/types.js';

/** @internal Raw sockets reach a session's engine and event routing through `session[kRawAccess]()`. */
export const kRawAccess = Symbol('uvfetch.rawAccess');

/** @internal Where raw-socket events go (the Dispatcher), and the TLS infos they refer to. */
export interface RawEvents {
  raw: ((rec: EventRecord) => void) | undefined;
  readonly tlsInfo: Map<number, TlsInfo>;
}

/** @internal What kRawAccess hands out: the engine, the event route, the session's defaults. */
export interface RawAccess {
  readonly engine: NativeEngine;
  /** The Dispatcher's hooks (it holds no Session, so neither does a raw socket). */
  readonly events: RawEvents;
  closed(): boolean;
  /** The session's TLS profile (its `tls` option, else a default profile). */
  tls(): TlsProfile;
  readonly connectTimeout: number;
  readonly tlsTimeout: number;
}

/** @internal Anything that hands out raw access (a Session). */
export interface RawAccessible {
  [kRawAccess](): RawAccess;
}
