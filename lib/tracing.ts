import diagnostics_channel from 'node:diagnostics_channel';

/**
 * Phase durations of one request in milliseconds (microsecond precision), like curl's -w timings.
 * Measured natively, and only when someone asked (a tracing subscriber, or `timings: true`).
 */
export interface Timings {
  /** Submitted → handed to a connection (waiting for a free or new socket). */
  queued: number;
  /** Name resolution for the connection this request opened (0 when reused, or an IP literal). */
  dns: number;
  /** TCP connect of the connection this request opened (0 when reused). */
  connect: number;
  /** TLS handshake of the connection this request opened (0 when reused, or plain http). */
  tls: number;
  /** Handed to the connection → first response byte. */
  ttfb: number;
  /** Handed to the connection → complete response head. */
  headers: number;
  /** Submitted → the event the timings travel with (head, completion or error). */
  total: number;
}

export interface RequestStartMessage {
  id: number;
  method: string;
  url: string;
}
export interface RequestHeadersMessage extends RequestStartMessage {
  status: number;
  reused: boolean;
  timings: Timings;
}
export interface RequestEndMessage extends RequestStartMessage {
  status: number;
  timings: Timings;
}
export interface RequestErrorMessage extends RequestStartMessage {
  error: Error;
  timings: Timings | undefined;
}
export interface ConnectionMessage {
  origin: string;
  /** On create: the connection's dns and connect times (ms). */
  dns?: number;
  connect?: number;
}
export interface TlsHandshakeMessage {
  origin: string;
  /** Handshake duration in ms. */
  duration: number;
  tls: import('./tls.js').TlsInfo;
}
export interface DnsLookupMessage {
  hostname: string;
  duration: number;
}

/** The channels uvfetch publishes on (node:diagnostics_channel). Nothing is measured or built when none has subscribers. */
export const channels = {
  dnsLookup: diagnostics_channel.channel('uvfetch:dns:lookup'),
  connectionCreate: diagnostics_channel.channel('uvfetch:connection:create'),
  connectionReuse: diagnostics_channel.channel('uvfetch:connection:reuse'),
  tlsHandshake: diagnostics_channel.channel('uvfetch:tls:handshake'),
  requestStart: diagnostics_channel.channel('uvfetch:request:start'),
  requestHeaders: diagnostics_channel.channel('uvfetch:request:headers'),
  requestEnd: diagnostics_channel.channel('uvfetch:request:end'),
  requestError: diagnostics_channel.channel('uvfetch:request:error'),
} as const;

/** True when any channel has a subscriber: then requests are timed natively. */
export function tracingActive(): boolean {
  return (
    channels.requestStart.hasSubscribers ||
    channels.requestHeaders.hasSubscribers ||
    channels.requestEnd.hasSubscribers ||
    channels.requestError.hasSubscribers ||
    channels.connectionCreate.hasSubscribers ||
    channels.connectionReuse.hasSubscribers ||
    channels.tlsHandshake.hasSubscribers ||
    channels.dnsLookup.hasSubscribers
  );
}

/** Decodes the native timing record (7 little-endian u32 microsecond values). */
export function decodeTimings(view: DataView, off: number): Timings {
  const ms = (i: number) => view.getUint32(off + i * 4, true) / 1000;
  return { queued: ms(0), dns: ms(1), connect: ms(2), tls: ms(6), ttfb: ms(3), headers: ms(4), total: ms(5) };
}
