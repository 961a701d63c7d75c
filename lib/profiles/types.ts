// Browser profiles (pure: types only). A profile is data: what a named browser sends for a
// top-level navigation (TLS ClientHello, HTTP/2 preface, request headers) and the fingerprints
// it is known to produce, each with where that value comes from.
import type { TlsOptions } from '../tls/types.js';

/** An HTTP/2 SETTINGS parameter: [identifier, value], in the order sent. */
export type H2Setting = readonly [id: number, value: number];

export interface H2Profile {
  /** SETTINGS of the preface, in order, with values. */
  settings: readonly H2Setting[];
  /** The connection-level WINDOW_UPDATE increment sent after SETTINGS (0 = none). */
  connectionWindowIncrement: number;
  /** PRIORITY frames sent after the preface (Akamai's third field); [] = none. */
  priorityFrames: readonly { streamId: number; exclusive: boolean; dependsOn: number; weight: number }[];
  /** The priority carried in the first HEADERS frame (null = no PRIORITY flag). Weight 1..256. */
  headersPriority: { exclusive: boolean; dependsOn: number; weight: number } | null;
  /** Pseudo-header order, e.g. [':method', ':authority', ':scheme', ':path']. */
  pseudoHeaderOrder: readonly string[];
}

export interface Http1Profile {
  /**
   * Header names in the order and spelling the browser uses on HTTP/1.1 (after Host, which the
   * engine writes first). Each takes its value from `headers` (matched case-insensitively);
   * 'Connection' takes `connection`. Names of `headers` not listed here are not sent on HTTP/1.1
   * (e.g. Firefox's `te: trailers`, sent on HTTP/2 only).
   */
  headerOrder: readonly string[];
  /** The Connection header's value ('keep-alive'). */
  connection: string;
}

export interface ProfileTargets {
  /** JA4 of the real browser's ClientHello (with SNI, ALPN h2). */
  ja4: string;
  /** JA4_r: the same with the sorted lists instead of their hashes ('' if not published). */
  ja4r: string;
  /** JA3 string of one real hello (Chrome shuffles its extension order per connection). */
  ja3: string;
  /** Akamai HTTP/2 fingerprint: SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo-header order. */
  akamaiH2: string;
}

/** Where a profile's values come from: one entry per part, a URL or a plain statement. */
export interface ProfileSources {
  ja4: string;
  ja3: string;
  akamaiH2: string;
  tls: string;
  h2: string;
  headers: string;
  /** What could not be sourced (stated, never invented). */
  unsourced?: string;
}

export interface BrowserProfileData {
  /** Versioned name, e.g. 'chrome-149'. */
  name: string;
  browser: string;
  version: string;
  /** TLS options (see TlsOptions): lists in the browser's order, ClientHello shaping. A group
   * written '?NAME' is used only where the running OpenSSL knows it (X25519MLKEM768: 3.5+). */
  tls: TlsOptions;
  h2: H2Profile;
  /**
   * Default headers of a top-level navigation GET, in the browser's order. Names are spelled as
   * the browser spells them on HTTP/1.1 (HTTP/2 lowercases every name). Host (and on HTTP/1.1
   * Connection) are the engine's: Host is always first.
   */
  headers: readonly (readonly [name: string, value: string])[];
  http1: Http1Profile;
  targets: ProfileTargets;
  sources: ProfileSources;
}

export interface BrowserProfile extends Readonly<BrowserProfileData> {
  /** A new profile: this one with `patch` applied (objects merged one level deep, lists replaced). */
  with(patch: BrowserProfilePatch): BrowserProfile;
}

export interface BrowserProfilePatch {
  name?: string;
  browser?: string;
  version?: string;
  tls?: Partial<TlsOptions>;
  h2?: Partial<H2Profile>;
  headers?: BrowserProfileData['headers'];
  http1?: Partial<Http1Profile>;
  targets?: Partial<ProfileTargets>;
  sources?: Partial<ProfileSources>;
}

/** What `impersonate` accepts: a shipped name ('chrome', 'chrome-149', 'firefox', …) or a profile. */
export type ImpersonateOption = string | BrowserProfile | BrowserProfileData;
