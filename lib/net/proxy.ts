// Proxy option parsing: `proxy: 'http://user:pass@host:port' | 'socks5://…' | 'env' | null`.
// The engine does the work natively (absolute-form requests or CONNECT tunnels through HTTP
// proxies, SOCKS5 handshakes); this module only turns the option into the engine's tuple and
// decides, for 'env', which proxy (if any) a URL uses.
import { isIP } from 'node:net';
import { invalidOption } from '../core/errors.js';

/** [kind (1 HTTP, 2 SOCKS5), host, port, user, pass] as the engine takes it. */
export type NativeProxy = [1 | 2, string, number, string, string];

export type ProxyOption = string | URL | 'env' | null;

interface NoProxyRule {
  host: string; // lower-cased; '' = match every host ('*')
  port: number; // 0 = any port
  suffix: boolean; // '.example.com' or 'example.com' (domain and subdomains)
}

/** What a session (or a request) resolved its `proxy` option to. */
export type ProxyConfig = { mode: 'fixed'; proxy: NativeProxy } | { mode: 'env'; http: NativeProxy | null; https: NativeProxy | null; noProxy: NoProxyRule[] };

export function parseProxyUrl(value: string | URL, name: string): NativeProxy {
  let u: URL;
  try {
    u = value instanceof URL ? value : new URL(value);
  } catch {
    throw invalidOption(name, 'expected a proxy URL such as http://host:port or socks5://user:pass@host:port');
  }
  let kind: 1 | 2;
  let defPort: number;
  if (u.protocol === 'http:') {
    kind = 1;
    defPort = 80;
  } else if (u.protocol === 'socks5:' || u.protocol === 'socks5h:') {
    kind = 2;
    defPort = 1080;
  } else {
    throw invalidOption(name, `unsupported proxy scheme ${u.protocol} (http:, socks5:, socks5h:)`);
  }
  if (u.hostname === '') throw invalidOption(name, 'the proxy URL has no host');
  if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '') {
    throw invalidOption(name, 'a proxy URL is only scheme://[user:pass@]host[:port]');
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port === '' ? defPort : Number(u.port);
  let user: string;
  let pass: string;
  try {
    user = decodeURIComponent(u.username);
    pass = decodeURIComponent(u.password);
  } catch {
    throw invalidOption(name, 'the proxy credentials are not valid percent-encoding');
  }
  if (/[\r\n\0]/.test(user + pass)) throw invalidOption(name, 'the proxy credentials contain CR, LF or NUL');
  if (kind === 2 && (Buffer.byteLength(user) > 255 || Buffer.byteLength(pass) > 255)) {
    throw invalidOption(name, 'SOCKS5 username and password are at most 255 bytes each');
  }
  return [kind, host, port, user, pass];
}

function parseNoProxy(v: string | undefined): NoProxyRule[] {
  if (!v) return [];
  const rules: NoProxyRule[] = [];
  for (let item of v.split(/[\s,]+/)) {
    item = item.trim().toLowerCase();
    if (item === '') continue;
    if (item === '*') {
      rules.push({ host: '', port: 0, suffix: true });
      continue;
    }
    let port = 0;
    const m = /^(.*):(\d+)$/.exec(item);
    if (m && !item.startsWith('[') && isIP(item) !== 6) {
      item = m[1]!;
      port = Number(m[2]);
    } else if (item.startsWith('[')) {
      const end = item.indexOf(']');
      const rest = item.slice(end + 1);
      if (rest.startsWith(':')) port = Number(rest.slice(1)) || 0;
      item = item.slice(1, end);
    }
    if (item.startsWith('*.')) item = item.slice(1);
    const suffix = isIP(item) === 0;
    rules.push({ host: item.startsWith('.') ? item.slice(1) : item, port, suffix });
  }
  return rules;
}

function envVar(name: string): string | undefined {
  return process.env[name.toLowerCase()] || process.env[name.toUpperCase()] || undefined;
}

/** Resolves a `proxy` option. `undefined` means "not given". */
export function proxyConfig(value: unknown, name: string): ProxyConfig | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (value === 'env') {
    const http = envVar('http_proxy');
    const https = envVar('https_proxy');
    return {
      mode: 'env',
      http: http ? parseProxyUrl(http, 'HTTP_PROXY') : null,
      https: https ? parseProxyUrl(https, 'HTTPS_PROXY') : null,
      noProxy: parseNoProxy(envVar('no_proxy')),
    };
  }
  if (typeof value === 'string' || value instanceof URL) return { mode: 'fixed', proxy: parseProxyUrl(value, name) };
  throw invalidOption(name, "expected a proxy URL, 'env' or null");
}

/** The proxy a request to `url` goes through, or null for a direct connection. */
export function proxyFor(cfg: ProxyConfig, url: URL, https: boolean): NativeProxy | null {
  if (cfg.mode === 'fixed') return cfg.proxy;
  const p = https ? cfg.https : cfg.http;
  if (p === null) return null;
  const host = (url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname).toLowerCase();
  const port = url.port === '' ? (https ? 443 : 80) : Number(url.port);
  for (const r of cfg.noProxy) {
    if (r.port !== 0 && r.port !== port) continue;
    if (r.host === '') return null;
    if (host === r.host || (r.suffix && host.endsWith(`.${r.host}`))) return null;
  }
  return p;
}

/** "Basic base64(user:pass)" for absolute-form requests through an HTTP proxy. */
export function basicAuth(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
}
