// Tracing: the node:diagnostics_channel channels uvfetch publishes on, and what it publishes.
import diagnostics_channel from 'node:diagnostics_channel';
import type { Timings } from '../core/types.js';
import type { TlsInfo } from '../tls/types.js';

export type { Timings };

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
  tls: TlsInfo;
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

/** Publishes what a response head tells: connection created or reused, DNS, headers (and end when `complete`). */
export function publishHead(id: number, method: string, url: string, status: number, reused: boolean, t: Timings, complete: boolean): void {
  const origin = new URL(url).origin;
  if (reused) {
    if (channels.connectionReuse.hasSubscribers) channels.connectionReuse.publish({ origin });
  } else {
    if (t.dns > 0 && channels.dnsLookup.hasSubscribers) {
      channels.dnsLookup.publish({ hostname: new URL(url).hostname, duration: t.dns });
    }
    if (channels.connectionCreate.hasSubscribers) {
      channels.connectionCreate.publish({ origin, dns: t.dns, connect: t.connect });
    }
  }
  if (channels.requestHeaders.hasSubscribers) {
    channels.requestHeaders.publish({ id, method, url, status, reused, timings: t });
  }
  if (complete && channels.requestEnd.hasSubscribers) {
    channels.requestEnd.publish({ id, method, url, status, timings: t });
  }
}
