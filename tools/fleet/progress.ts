// Progress display for `uvfetch fetch`: a bar redrawn in place on a terminal, or one plain line
// per interval when the stream is not a terminal (logs, CI).

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '-';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class Progress {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #interval: number;
  readonly #total: number | undefined;
  readonly #connections: () => number;
  #done = 0;
  #errors = 0;
  #t0 = 0;
  #lastT = 0;
  #lastDone = 0;
  #rate = 0;
  #timer: NodeJS.Timeout | undefined;
  #drawn = false;

  constructor(out: NodeJS.WriteStream, intervalMs: number, total: number | undefined, connections: () => number) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    // A terminal bar is redrawn often; plain lines come once per interval.
    this.#interval = this.#tty ? Math.min(intervalMs, 250) : intervalMs;
    this.#total = total;
    this.#connections = connections;
  }

  start(): void {
    this.#t0 = this.#lastT = performance.now();
    this.#timer = setInterval(() => this.#draw(false), this.#interval);
    this.#timer.unref();
  }

  add(ok: boolean): void {
    this.#done++;
    if (!ok) this.#errors++;
  }

  /** A message on its own line (the bar is redrawn after it). */
  note(msg: string): void {
    if (this.#tty && this.#drawn) this.#out.write('\r\x1b[2K');
    this.#out.write(`${msg}\n`);
    this.#drawn = false;
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#draw(true);
    if (this.#tty) this.#out.write('\n');
  }

  line(final: boolean): string {
    const now = performance.now();
    const dt = (now - this.#lastT) / 1000;
    if (dt > 0.05) {
      const inst = (this.#done - this.#lastDone) / dt;
      this.#rate = this.#rate === 0 ? inst : 0.7 * inst + 0.3 * this.#rate;
      this.#lastT = now;
      this.#lastDone = this.#done;
    }
    const elapsed = (now - this.#t0) / 1000;
    const rate = final ? (elapsed > 0 ? this.#done / elapsed : 0) : this.#rate;
    const parts: string[] = [];
    const t = this.#total;
    if (t !== undefined && t > 0) {
      const frac = Math.min(1, this.#done / t);
      if (this.#tty) {
        const w = 24;
        const filled = Math.round(frac * w);
        parts.push(`[${'#'.repeat(filled)}${'.'.repeat(w - filled)}]`);
      }
      parts.push(`${(frac * 100).toFixed(1).padStart(5)}%`, `${fmt(this.#done)}/${fmt(t)}`);
    } else {
      parts.push(`${fmt(this.#done)} done`);
    }
    parts.push(`${fmt(rate)}/s`);
    if (t !== undefined && !final) parts.push(`ETA ${rate > 0 ? fmtDuration((t - this.#done) / rate) : '-'}`);
    parts.push(`errors ${fmt(this.#errors)}`, `conns ${this.#connections()}`, `elapsed ${fmtDuration(elapsed)}`);
    return parts.join('  ');
  }

  #draw(final: boolean): void {
    let l = this.line(final);
    if (this.#tty) {
      const cols = this.#out.columns;
      if (cols !== undefined && cols > 10 && l.length >= cols) l = l.slice(0, cols - 1);
      this.#out.write(`\r\x1b[2K${l}`);
      this.#drawn = true;
    } else {
      this.#out.write(`uvfetch fetch: ${l}\n`);
    }
  }
}
