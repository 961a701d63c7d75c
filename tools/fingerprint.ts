// `uvfetch fingerprint --impersonate <profile>`: how close a browser profile gets on this Node
// (profileFingerprint(): a real handshake, a real HTTP/1.1 request and a real HTTP/2 request
// against loopback listeners),
// target and sent side by side, then each remaining difference with its reason.
import { parseArgs } from 'node:util';
import { type ProfileFingerprint, profileFingerprint, profiles } from 'uvfetch';

export const FINGERPRINT_USAGE = [
  'usage: uvfetch fingerprint --impersonate <profile> [--json] [--timeout <ms>]',
  '',
  'Makes a real TLS handshake, a real HTTP/1.1 request and a real HTTP/2 request as <profile>',
  'against loopback listeners and prints the target JA4, JA3, Akamai HTTP/2 string and header',
  'orders next to what was actually sent, and each remaining difference with its reason.',
  '',
  `  --impersonate <profile>  ${Object.keys(profiles).join(', ')}`,
  '  --json                   print the report as JSON',
  '  --timeout <ms>           per step (default 5000)',
].join('\n');

function render(r: ProfileFingerprint): string {
  const same = (a: boolean) => (a ? 'same' : 'differs');
  const row = (label: string, target: string, sent: string, verdict: string) =>
    [`${label}`, `  target  ${target}`, `  sent    ${sent}`, `  → ${verdict}`].join('\n');
  const lines = [
    `profile ${r.profile} on Node ${r.node} (${r.openssl})`,
    '',
    row('JA4', r.target.ja4, r.sent.ja4, `${same(r.match.ja4)} (cipher hash ${same(r.match.ja4Ciphers)})`),
    row('JA3', r.target.ja3, r.sent.ja3, same(r.match.ja3)),
    row('Akamai HTTP/2', r.target.akamaiH2, r.sent.akamaiH2 ?? '(none: this Node exports no nghttp2)', same(r.match.akamaiH2)),
    row(
      'HTTP/2 header order',
      r.target.h2HeaderOrder.join(', '),
      r.sent.akamaiH2 === null ? '(none)' : r.sent.h2HeaderOrder.join(', '),
      same(r.match.h2HeaderOrder),
    ),
    row('HTTP/1.1 header order', r.target.headerOrder.join(', '), r.sent.headerOrder.join(', '), same(r.match.headerOrder)),
    '',
    `differences (${r.differences.length}):`,
    ...r.differences.map((d) => `  ${d.part.padEnd(15)} ${d.what}\n  ${''.padEnd(15)} because: ${d.reason}`),
  ];
  return `${lines.join('\n')}\n`;
}

export function fingerprintCommand(usageError: new (msg: string) => Error) {
  return {
    name: 'fingerprint',
    summary: 'compare a browser profile (--impersonate) with what this Node actually sends',
    usage: FINGERPRINT_USAGE,
    async run(argv: string[]): Promise<number> {
      let values: { impersonate?: string; json?: boolean; timeout?: string };
      try {
        values = parseArgs({
          args: argv,
          options: { impersonate: { type: 'string' }, json: { type: 'boolean' }, timeout: { type: 'string' } },
          allowPositionals: false,
        }).values;
      } catch (e) {
        throw new usageError((e as Error).message);
      }
      if (values.impersonate === undefined) throw new usageError('--impersonate <profile> is required');
      if (!Object.hasOwn(profiles, values.impersonate)) {
        throw new usageError(`unknown profile '${values.impersonate}' (known: ${Object.keys(profiles).join(', ')})`);
      }
      const timeout = values.timeout === undefined ? 5000 : Number(values.timeout);
      if (!Number.isInteger(timeout) || timeout < 100 || timeout > 600_000)
        throw new usageError(`--timeout must be an integer from 100 to 600000, got '${values.timeout}'`);
      const r = await profileFingerprint(values.impersonate, { timeout });
      process.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : render(r));
      return 0;
    },
  };
}
