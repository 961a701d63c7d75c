// Credential redaction for logs: URL userinfo and credential-bearing headers.

/** Headers whose values are always replaced by REDACTED in logs. */
export const CREDENTIAL_HEADERS: readonly string[] = Object.freeze(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

export const REDACTED = '[REDACTED]';

/** `url` with user:password replaced by REDACTED (a string that is not a URL is returned as is). */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if (u.username === '' && u.password === '') return u.href;
  return `${u.protocol}//${REDACTED}@${u.host}${u.pathname}${u.search}${u.hash}`;
}

/** Headers as a plain object (lower-case names; repeated values joined, Set-Cookie as an array), credentials redacted. */
export function redactHeaders(h: Iterable<[string, string]> & { getSetCookie?(): string[] }, redact: ReadonlySet<string>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of h) {
    const n = name.toLowerCase();
    if (n === 'set-cookie') continue;
    const v = redact.has(n) ? REDACTED : value;
    const cur = out[n];
    out[n] = cur === undefined ? v : `${String(cur)}, ${v}`;
  }
  const sc = typeof h.getSetCookie === 'function' ? h.getSetCookie() : [];
  if (sc.length > 0) out['set-cookie'] = sc.map((v) => (redact.has('set-cookie') ? REDACTED : v));
  return out;
}
