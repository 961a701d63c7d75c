/**
 * Response headers, parsed lazily from the raw head the engine validated. Nothing is split into
 * per-header strings until a header is read.
 */
export class ResponseHeaders implements Iterable<[string, string]> {
  readonly #raw: string;
  #names: string[] | undefined; // lower-cased
  #values: string[] | undefined;
  #rawNames: string[] | undefined;

  /** @param rawHead the response head exactly as received, status line included. */
  constructor(rawHead: string) {
    this.#raw = rawHead;
  }

  #parse(): void {
    const names: string[] = [];
    const values: string[] = [];
    const rawNames: string[] = [];
    const raw = this.#raw;
    let pos = raw.indexOf('\r\n') + 2; // skip the status line
    // The engine guarantees CRLF line ends, a colon in every field line and no obs-fold.
    while (pos < raw.length) {
      const eol = raw.indexOf('\r\n', pos);
      if (eol === -1 || eol === pos) break;
      const colon = raw.indexOf(':', pos);
      const name = raw.slice(pos, colon);
      rawNames.push(name);
      names.push(name.toLowerCase());
      values.push(raw.slice(colon + 1, eol).trim());
      pos = eol + 2;
    }
    this.#names = names;
    this.#values = values;
    this.#rawNames = rawNames;
  }

  /** Value of a header; repeated headers are joined with ", " (Set-Cookie: use getSetCookie()). */
  get(name: string): string | null {
    if (this.#names === undefined) this.#parse();
    const key = name.toLowerCase();
    const names = this.#names!;
    let out: string | null = null;
    for (let i = 0; i < names.length; i++) {
      if (names[i] === key) out = out === null ? this.#values![i]! : `${out}, ${this.#values![i]!}`;
    }
    return out;
  }

  has(name: string): boolean {
    if (this.#names === undefined) this.#parse();
    return this.#names!.includes(name.toLowerCase());
  }

  /** Every Set-Cookie value, unjoined. */
  getSetCookie(): string[] {
    if (this.#names === undefined) this.#parse();
    const out: string[] = [];
    this.#names!.forEach((n, i) => {
      if (n === 'set-cookie') out.push(this.#values![i]!);
    });
    return out;
  }

  /** Lower-cased name → every value, in order received (node-fetch's raw()). */
  raw(): Record<string, string[]> {
    if (this.#names === undefined) this.#parse();
    const out: Record<string, string[]> = Object.create(null);
    this.#names!.forEach((n, i) => {
      (out[n] ??= []).push(this.#values![i]!);
    });
    return out;
  }

  /** Flat [name, value, name, value, ...] with names as the server spelled them (node:http's rawHeaders). */
  rawPairs(): string[] {
    if (this.#names === undefined) this.#parse();
    const out: string[] = [];
    this.#rawNames!.forEach((n, i) => out.push(n, this.#values![i]!));
    return out;
  }

  /** The head as received: status line and header lines, CRLF-separated. */
  get rawHead(): string {
    return this.#raw;
  }

  *entries(): IterableIterator<[string, string]> {
    if (this.#names === undefined) this.#parse();
    for (let i = 0; i < this.#names!.length; i++) yield [this.#names![i]!, this.#values![i]!];
  }

  keys(): IterableIterator<string> {
    if (this.#names === undefined) this.#parse();
    return this.#names![Symbol.iterator]();
  }

  forEach(fn: (value: string, name: string) => void): void {
    for (const [n, v] of this.entries()) fn(v, n);
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

/** Status text from a raw head's status line ("HTTP/1.1 404 Not Found" → "Not Found"). */
export function statusTextOf(rawHead: string): string {
  const eol = rawHead.indexOf('\r\n');
  const line = eol === -1 ? rawHead : rawHead.slice(0, eol);
  // "HTTP/1.1 200 OK": the reason starts after the second space, if any.
  return line.length > 13 ? line.slice(13) : '';
}
