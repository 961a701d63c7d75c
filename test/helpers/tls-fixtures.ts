// Test certificates, generated once per test file with the `openssl` CLI (Debian package
// `openssl`, 3.0+; no libssl-dev, no shell): EC P-256 keys, every file in a fresh temp directory.
//
//   root CA ── server      localhost, 127.0.0.1, ::1
//           ├─ expired     same names, valid 2020-01-01..2020-01-02 (made with `openssl ca`, since
//           │              `x509 -not_before/-not_after` needs OpenSSL 3.4)
//           └─ wrongHost   wrong.example only
//   selfSigned             localhost, signed by itself (untrusted)
//   client CA ── client    clientAuth; also with its key encrypted (clientEncrypted)
//
//   const fx = await tlsFixtures();
//   tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: fx.caPem })
//
// The openssl config files are our own (`-config`), so the system openssl.cnf does not matter.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import { OPENSSL_CONFIG } from '../../tools/tls-loopback.js';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TlsFixtures {
  caPem: string;
  server: KeyPair;
  expired: KeyPair;
  wrongHost: KeyPair;
  selfSigned: KeyPair;
  clientCa: string;
  client: KeyPair;
  clientEncrypted: KeyPair & { passphrase: string };
  dir: string;
}

const CLIENT_KEY_PASSPHRASE = 'uvfetch-test-passphrase';

// The bench's CA and localhost server sections (tools/tls-loopback.ts), plus the test-only ones.
const REQ_CONFIG = `${OPENSSL_CONFIG}[ wrong_host_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ self_signed_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

// `openssl ca` is the 3.0-compatible way to pick arbitrary (past) validity dates.
const caConfig = (dir: string) => `
[ ca ]
default_ca = test_ca
[ test_ca ]
database = ${dir}/ca-index.txt
new_certs_dir = ${dir}/ca-newcerts
serial = ${dir}/ca-serial
certificate = ${dir}/ca.pem
private_key = ${dir}/ca.key
default_md = sha256
policy = any_policy
unique_subject = no
copy_extensions = none
email_in_dn = no
[ any_policy ]
commonName = supplied
`;

let cached: Promise<TlsFixtures> | undefined;
let generatedDir: string | undefined;

// Registered when a test file imports this module: the directory goes away with the file (vitest
// forks are killed rather than exited, so a process 'exit' hook would not run).
afterAll(() => {
  if (generatedDir) fs.rmSync(generatedDir, { recursive: true, force: true });
  generatedDir = undefined;
  cached = undefined;
});

/** Generates the fixtures on first call; later calls return the same ones. */
export function tlsFixtures(): Promise<TlsFixtures> {
  cached ??= Promise.resolve().then(generate);
  return cached;
}

function generate(): TlsFixtures {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvf-tls-'));
  generatedDir = dir;
  const file = (name: string) => path.join(dir, name);
  const read = (name: string) => fs.readFileSync(file(name), 'utf8');
  const openssl = (...args: string[]) => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as Error & { stderr?: Buffer };
      throw new Error(`openssl ${args.join(' ')} failed: ${err.stderr?.toString() ?? err.message}`);
    }
  };
  fs.writeFileSync(file('req.cnf'), REQ_CONFIG);
  const cfg = file('req.cnf');

  const newKey = (name: string) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(name));
  const selfSign = (key: string, out: string, cn: string, ext: string) =>
    openssl('req', '-config', cfg, '-new', '-x509', '-key', file(key), '-out', file(out), '-subj', `/CN=${cn}`, '-days', '3650', '-sha256', '-extensions', ext);
  const csr = (key: string, out: string, cn: string) => openssl('req', '-config', cfg, '-new', '-key', file(key), '-out', file(out), '-subj', `/CN=${cn}`);
  const sign = (csrName: string, caName: string, out: string, ext: string) =>
    openssl(
      'x509',
      '-req',
      '-in',
      file(csrName),
      '-CA',
      file(`${caName}.pem`),
      '-CAkey',
      file(`${caName}.key`),
      '-set_serial',
      `0x${randomSerial()}`,
      '-days',
      '825',
      '-sha256',
      '-extfile',
      cfg,
      '-extensions',
      ext,
      '-out',
      file(out),
    );

  newKey('ca.key');
  selfSign('ca.key', 'ca.pem', 'uvfetch test root CA', 'ca_ext');

  newKey('server.key');
  csr('server.key', 'server.csr', 'localhost');
  sign('server.csr', 'ca', 'server.pem', 'server_ext');

  newKey('wrong-host.key');
  csr('wrong-host.key', 'wrong-host.csr', 'wrong.example');
  sign('wrong-host.csr', 'ca', 'wrong-host.pem', 'wrong_host_ext');

  newKey('expired.key');
  csr('expired.key', 'expired.csr', 'localhost');
  fs.writeFileSync(file('ca.cnf'), caConfig(dir));
  fs.writeFileSync(file('ca-index.txt'), '');
  fs.writeFileSync(file('ca-serial'), `${randomSerial()}\n`);
  fs.mkdirSync(file('ca-newcerts'));
  openssl(
    'ca',
    '-batch',
    '-notext',
    '-config',
    file('ca.cnf'),
    '-in',
    file('expired.csr'),
    '-out',
    file('expired.pem'),
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
    '-extfile',
    cfg,
    '-extensions',
    'server_ext',
  );

  newKey('self-signed.key');
  selfSign('self-signed.key', 'self-signed.pem', 'localhost', 'self_signed_ext');

  newKey('client-ca.key');
  selfSign('client-ca.key', 'client-ca.pem', 'uvfetch test client CA', 'ca_ext');
  newKey('client.key');
  csr('client.key', 'client.csr', 'uvfetch test client');
  sign('client.csr', 'client-ca', 'client.pem', 'client_ext');
  openssl('pkey', '-in', file('client.key'), '-aes-256-cbc', '-passout', `pass:${CLIENT_KEY_PASSPHRASE}`, '-out', file('client-encrypted.key'));

  return {
    caPem: read('ca.pem'),
    server: { cert: read('server.pem'), key: read('server.key') },
    expired: { cert: pemOnly(read('expired.pem')), key: read('expired.key') },
    wrongHost: { cert: read('wrong-host.pem'), key: read('wrong-host.key') },
    selfSigned: { cert: read('self-signed.pem'), key: read('self-signed.key') },
    clientCa: read('client-ca.pem'),
    client: { cert: read('client.pem'), key: read('client.key') },
    clientEncrypted: { cert: read('client.pem'), key: read('client-encrypted.key'), passphrase: CLIENT_KEY_PASSPHRASE },
    dir,
  };
}

// 16 random hex digits with the top bit clear, so the serial is a positive INTEGER.
function randomSerial(): string {
  const hex = Array.from({ length: 16 }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  return (parseInt(hex[0]!, 16) & 0x7).toString(16) + hex.slice(1);
}

// Just the PEM block (`openssl ca` may prepend a text dump without -notext on some builds).
function pemOnly(s: string): string {
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(s);
  return m ? m[0] : s;
}
