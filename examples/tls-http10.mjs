// A raw HTTP/1.0 fetcher over TLS built only on uvfetch's connect(): one request, read to EOF,
// split head and body by hand. Shows what the native TLS session negotiated.
//
//   node examples/tls-http10.mjs https://example.com/ [--ca ca.pem] [--insecure]
//
// --ca trusts the PEM file's certificates (instead of the system's); --insecure skips
// verification. Prints the TLS session, the status line, the headers and the body.

import * as fs from 'node:fs';
import { connect } from 'uvfetch';

const args = process.argv.slice(2);
const url = new URL(args.find((a) => !a.startsWith('--')) ?? 'https://example.com/');
if (url.protocol !== 'https:') throw new Error('an https: URL, please');
const caAt = args.indexOf('--ca');
const tls = {};
if (caAt >= 0) tls.ca = fs.readFileSync(args[caAt + 1], 'utf8');
if (args.includes('--insecure')) tls.rejectUnauthorized = false;

const host = url.hostname.replace(/^\[|\]$/g, '');
const sock = await connect({ host, port: Number(url.port || 443), tls, timeout: 10_000 });
const t = sock.tls;
console.log(`connected to ${sock.remoteAddress}:${sock.remotePort} from port ${sock.localPort}`);
console.log(`tls: ${t.protocol} ${t.cipher} alpn=${t.alpn || '-'} ja4=${t.ja4}`);

// HTTP/1.0: the server closes the connection after the response, so EOF ends the body.
sock.write(`GET ${url.pathname}${url.search} HTTP/1.0\r\nHost: ${url.host}\r\nUser-Agent: uvfetch-example\r\nConnection: close\r\n\r\n`);
const parts = [];
for await (const chunk of sock) parts.push(chunk);
const raw = Buffer.concat(parts);
const split = raw.indexOf('\r\n\r\n');
if (split < 0) throw new Error(`no complete response head in ${raw.length} bytes`);
const [status, ...headers] = raw.toString('latin1', 0, split).split('\r\n');
console.log(status);
for (const h of headers) console.log(h);
console.log('');
process.stdout.write(raw.subarray(split + 4));
console.log(`\n(${sock.bytesWritten} bytes sent, ${sock.bytesRead} received)`);
