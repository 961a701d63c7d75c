// TlsProfile.fingerprint(): the JA3/JA4 of the ClientHello a profile sends, taken from a real
// handshake attempt against a loopback listener that hangs up after the hello. It drives a
// one-connection native engine directly (no Session: the TLS layer sits below it).
import net from 'node:net';
import { UvfetchError } from '../core/errors.js';
import { binding, defaultEngineOptions, type NativeTlsContext } from '../native/binding.js';
import { Ev, EventRecord, forEachRecord, submit } from '../native/wire.js';
import type { TlsFingerprint } from './types.js';

/** The hello is sent for this name (so SNI is present, as for any named host) unless the profile sets `servername`. */
const HOST = 'localhost';

export async function fingerprintHello(ctx: NativeTlsContext, timeout: number): Promise<TlsFingerprint> {
  let done: (fp: TlsFingerprint | Error) => void = () => {};
  const result = new Promise<TlsFingerprint | Error>((resolve) => {
    done = resolve;
  });
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const fp = binding.fingerprintHello(buf);
      if (fp !== null) {
        done(fp);
        sock.destroy();
      } else if (buf.length > 64 * 1024) {
        done(new UvfetchError('ERR_TLS', 'no ClientHello in the first 64 KiB'));
        sock.destroy();
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  let closed: () => void = () => {};
  const whenClosed = new Promise<void>((resolve) => {
    closed = resolve;
  });
  const rec = new EventRecord();
  // The engine holds this callback weakly: it stays referenced below until the engine closed.
  const onEvents = (batch: Buffer, bigs: Buffer[] | undefined): void =>
    forEachRecord(batch, bigs, rec, (r) => {
      if (r.type === Ev.Closed) closed();
      else if (r.type === Ev.Complete || r.type === Ev.Head) done(new UvfetchError('ERR_TLS', 'the loopback listener answered unexpectedly'));
    });
  const options = {
    ...defaultEngineOptions(),
    connections: 1,
    connectTimeout: timeout,
    dns: { overrides: [[HOST, ['127.0.0.1']]] as Array<[string, string[]]> },
  };
  const engine = new binding.NativeEngine(options, onEvents);
  const timer = setTimeout(() => done(new UvfetchError('ERR_TLS_HANDSHAKE_TIMEOUT', 'no ClientHello arrived')), timeout);
  try {
    const rc = submit(engine, {
      id: 1,
      host: HOST,
      port,
      tls: ctx,
      method: 'GET',
      target: '/',
      headers: null,
      body: null,
      flags: 0,
      streamedLength: -1,
      overrides: null,
      proxy: null,
    });
    if (rc !== 0) throw new UvfetchError('ERR_TLS', `could not start the handshake: ${engine.lastError()}`);
    const r = await result;
    if (r instanceof Error) throw r;
    return r;
  } finally {
    clearTimeout(timer);
    engine.close();
    engine.destroy();
    await whenClosed;
    void onEvents;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
