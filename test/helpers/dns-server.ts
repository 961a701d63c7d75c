// A tiny authoritative DNS server on 127.0.0.1 (node:dgram) for the 'records' resolver tests:
// answers A queries from a table with chosen TTLs, NXDOMAIN for names it does not know, and an
// empty NOERROR answer (NODATA) for other types. Counts the queries it receives.
import * as dgram from 'node:dgram';
import * as net from 'node:net';

export interface DnsRecord {
  address: string; // IPv4
  ttl: number; // seconds
}

export interface TestDnsServer {
  port: number;
  /** Name (lowercase) → A records; change it at any time. */
  records: Map<string, DnsRecord[]>;
  /** Every query received: `${name} ${type}` (type 1 = A, 28 = AAAA). */
  queries: string[];
  /** A queries received for one name. */
  aQueries(name: string): number;
  close(): Promise<void>;
}

function question(msg: Buffer): { name: string; type: number; end: number } | undefined {
  let off = 12;
  const labels: string[] = [];
  while (off < msg.length) {
    const len = msg[off]!;
    if (len === 0) break;
    if (len > 63) return undefined; // no compression in questions
    labels.push(msg.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
  if (off + 5 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(off + 1), end: off + 5 };
}

export async function startDnsServer(): Promise<TestDnsServer> {
  const sock = dgram.createSocket('udp4');
  const s: TestDnsServer = {
    port: 0,
    records: new Map(),
    queries: [],
    aQueries: (name) => s.queries.filter((q) => q === `${name} 1`).length,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    const q = question(msg);
    if (q === undefined) return;
    s.queries.push(`${q.name} ${q.type}`);
    const recs = s.records.get(q.name);
    const answers = q.type === 1 && recs !== undefined ? recs.filter((r) => net.isIPv4(r.address)) : [];
    const rcode = recs === undefined ? 3 : 0; // NXDOMAIN for unknown names
    const head = Buffer.alloc(12);
    head.writeUInt16BE(msg.readUInt16BE(0), 0); // id
    head.writeUInt16BE(0x8000 | 0x0400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2); // QR AA RD RA
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(answers.length, 6);
    const parts = [head, msg.subarray(12, q.end)];
    for (const r of answers) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question
      rr.writeUInt16BE(1, 2); // A
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(r.ttl, 6);
      rr.writeUInt16BE(4, 10);
      r.address.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
      parts.push(rr);
    }
    sock.send(Buffer.concat(parts), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  s.port = sock.address().port;
  return s;
}
