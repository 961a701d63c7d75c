// `uvfetch fetch urls.txt|-`: fetches every line of a file (or stdin) through one Session and
// fetchMany, writing one JSON line per result. Resumable, interruptible, with a progress line.

import { createReadStream, createWriteStream, existsSync, openSync, closeSync, readSync, fstatSync, ftruncateSync, type WriteStream } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Session, UvfetchError } from 'uvfetch';
import type { FetchManyRequest } from 'uvfetch';
import type { RequestOptions } from 'uvfetch';
import { parseLine, errorRecord, responseRecord, type FetchRecord } from 'uvfetch/fleet';
import { SESSION_ARG_SPECS, SESSION_ARGS_USAGE, sessionSetup, intArg, FleetUsageError } from './options.js';
import { Progress } from './progress.js';

export const FETCH_USAGE = `usage: uvfetch fetch <urls.txt | -> [options]

Fetches every line of the file (or of stdin with '-'): a URL, or a JSON request object
{"url": ..., "method"?, "headers"?, "body"?, "timeout"?, ...}. Blank lines and lines starting
with '#' are skipped; any other line that is not a usable request becomes an error result
(ERR_INVALID_URL, ERR_UNSUPPORTED_PROTOCOL, ERR_INVALID_OPTION). One JSON line per result:
{ url, line, method, status, finalUrl, headers, timings, attempts, redirects, bodySize,
  body | bodyBase64 | bodyFile | bodyOmitted, error: null | { code, message }, at }
in completion order.

options:
  -o, --out FILE          write the JSON lines to FILE (default: stdout)
  --resume                skip the lines already recorded in --out (and repair a cut last line)
  --grace MS              after Ctrl-C, how long in-flight requests may finish before they are
                          aborted and recorded as such (default 10000; a second Ctrl-C aborts now)
  --progress-interval MS  progress on stderr: a bar redrawn on a terminal, else one plain line
                          per interval (default 1000)
  -q, --quiet             no progress and no summary line
${SESSION_ARGS_USAGE}

exit status: 0 every line has a result (error results included), 1 a fatal error (input or
output unusable), 2 usage error, 130 interrupted (the output holds whole lines only).`;

/** Reads --out for --resume: the recorded line numbers; cuts a partial last line off the file. */
function readDone(out: string): { done: Set<number>; repaired: boolean } {
  const done = new Set<number>();
  if (!existsSync(out)) return { done, repaired: false };
  const fd = openSync(out, 'r+');
  let repaired = false;
  try {
    const size = fstatSync(fd).size;
    const chunk = Buffer.allocUnsafe(1 << 20);
    let pos = 0;
    let carry = '';
    let complete = 0; // bytes up to and including the last newline
    let lineNo = 0;
    while (pos < size) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n <= 0) break;
      const text = carry + chunk.toString('utf8', 0, n);
      pos += n;
      const lines = text.split('\n');
      carry = lines.pop()!;
      for (const l of lines) {
        lineNo++;
        complete += Buffer.byteLength(l) + 1;
        if (l === '') continue;
        let rec: FetchRecord;
        try {
          rec = JSON.parse(l) as FetchRecord;
        } catch {
          throw new Error(`--resume: ${out} line ${lineNo} is not JSON: not an output of uvfetch fetch?`);
        }
        if (typeof rec.line === 'number' && rec.aborted !== true) done.add(rec.line);
      }
    }
    if (carry !== '' || complete !== size) {
      // A run killed mid-write: the cut line is dropped (its item is fetched again).
      ftruncateSync(fd, complete);
      repaired = true;
    }
  } finally {
    closeSync(fd);
  }
  return { done, repaired };
}

/** Counts the request lines of a file (for the progress bar's ETA). */
async function countLines(file: string): Promise<number> {
  let n = 0;
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const l of rl) if (parseLine(l).kind !== 'skip') n++;
  return n;
}

export async function fetchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...SESSION_ARG_SPECS,
      out: { type: 'string', short: 'o' },
      resume: { type: 'boolean' },
      grace: { type: 'string' },
      'progress-interval': { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
    },
  });
  if (positionals.length !== 1) throw new FleetUsageError('expected exactly one input: a file of URLs, or - for stdin');
  const input = positionals[0]!;
  const setup = sessionSetup(values, true);
  const grace = intArg('grace', values.grace, 10_000, 0, 2 ** 31 - 1);
  const interval = intArg('progress-interval', values['progress-interval'], 1000, 50, 3_600_000);
  const quiet = values.quiet === true;
  if (values.resume === true && values.out === undefined) throw new FleetUsageError('--resume needs --out FILE');
  if (input !== '-' && !existsSync(input)) {
    process.stderr.write(`uvfetch fetch: no such file: ${input}\n`);
    return 1;
  }

  let done = new Set<number>();
  if (values.resume === true) {
    try {
      const r = readDone(values.out!);
      done = r.done;
      if (!quiet) process.stderr.write(`uvfetch fetch: resuming: ${done.size} line(s) already done${r.repaired ? ' (a cut last line was removed)' : ''}\n`);
    } catch (e) {
      process.stderr.write(`uvfetch fetch: ${(e as Error).message}\n`);
      return 1;
    }
  }
  const total = input === '-' || quiet ? undefined : Math.max(0, (await countLines(input)) - done.size);

  const out: WriteStream | NodeJS.WriteStream =
    values.out !== undefined ? createWriteStream(values.out, { flags: values.resume === true ? 'a' : 'w' }) : process.stdout;
  let outError: Error | undefined;
  out.on('error', (e: Error) => {
    outError ??= e;
  });
  const write = async (rec: FetchRecord): Promise<void> => {
    if (outError !== undefined) throw outError;
    // One write per whole line: a line is never split between writes.
    if (!out.write(`${JSON.stringify(rec)}\n`)) await new Promise<void>((r) => out.once('drain', r));
  };

  let session: Session;
  try {
    session = new Session(setup.sessionOptions);
  } catch (e) {
    // A bad option (an unknown --impersonate profile, a --session-options field) is a usage error.
    if (e instanceof UvfetchError && e.code === 'ERR_INVALID_OPTION') throw new FleetUsageError(e.message);
    throw e;
  }
  const abort = new AbortController();
  const baseOpts: RequestOptions = { timings: true, signal: abort.signal, ...(setup.timeout > 0 ? { timeout: { total: setup.timeout } } : {}) };
  const counts = { ok: 0, errors: 0, aborted: 0, skipped: done.size };
  const progress = quiet ? undefined : new Progress(process.stderr, interval, total, () => session.stats().connections.open);

  // The input, pulled lazily by fetchMany; malformed lines are recorded here, in passing.
  let stopping = false;
  let rl: Interface | undefined;
  const meta = new Map<number, { line: number; url: string; method: string }>();
  async function* requests(): AsyncGenerator<FetchManyRequest> {
    const src = input === '-' ? process.stdin : createReadStream(input);
    rl = createInterface({ input: src, crlfDelay: Infinity });
    let lineNo = 0;
    let index = 0;
    try {
      for await (const raw of rl) {
        lineNo++;
        if (stopping) return;
        if (done.has(lineNo)) continue;
        const p = parseLine(raw);
        if (p.kind === 'skip') continue;
        if (p.kind === 'error') {
          counts.errors++;
          progress?.add(false);
          await write(errorRecord(p.url, 'GET', p.error, { line: lineNo }));
          continue;
        }
        const opts: RequestOptions = p.options === undefined ? baseOpts : { ...baseOpts, ...p.options };
        meta.set(index++, { line: lineNo, url: p.url, method: (opts.method ?? 'GET').toUpperCase() });
        yield { url: p.url, ...opts };
      }
    } finally {
      rl.close();
      if (input !== '-') src.destroy();
    }
  }

  let sigints = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  const onSigint = (): void => {
    sigints++;
    if (sigints === 1) {
      stopping = true;
      rl?.close(); // ends the input (stdin included): nothing more is read
      progress?.note('uvfetch fetch: interrupted — finishing in-flight requests (Ctrl-C again to abort them)');
      graceTimer = setTimeout(() => abort.abort(), grace);
      graceTimer.unref();
    } else {
      abort.abort();
    }
  };
  process.on('SIGINT', onSigint);
  progress?.start();
  let code = 0;
  try {
    for await (const r of session.fetchMany(requests(), {
      concurrency: setup.concurrency,
      ...(setup.perHost !== undefined ? { perHost: setup.perHost } : {}),
    })) {
      const m = meta.get(r.index)!;
      meta.delete(r.index);
      let rec: FetchRecord;
      if (r.response !== undefined) {
        try {
          rec = await responseRecord(m.url, m.method, r.response, setup.bodies, `${m.line}:${m.url}`, { line: m.line });
        } catch (e) {
          rec = errorRecord(m.url, m.method, e, { line: m.line });
        }
      } else {
        rec = errorRecord(m.url, m.method, r.error, { line: m.line });
      }
      if (rec.error === null) counts.ok++;
      else if (rec.aborted === true) counts.aborted++;
      else counts.errors++;
      progress?.add(rec.error === null);
      await write(rec);
    }
  } catch (e) {
    process.stderr.write(`uvfetch fetch: ${(e as Error).message}\n`);
    code = 1;
  } finally {
    process.off('SIGINT', onSigint);
    if (graceTimer !== undefined) clearTimeout(graceTimer);
    progress?.stop();
    await session.close();
    if (out !== process.stdout) await new Promise<void>((r) => (out as WriteStream).end(r));
  }
  if (outError !== undefined) {
    process.stderr.write(`uvfetch fetch: cannot write the output: ${outError.message}\n`);
    return 1;
  }
  if (!quiet) {
    process.stderr.write(
      `uvfetch fetch: ${counts.ok} ok, ${counts.errors} error result(s), ${counts.aborted} aborted` +
        (counts.skipped > 0 ? `, ${counts.skipped} already done` : '') +
        (stopping ? ' — interrupted' : '') +
        '\n',
    );
  }
  if (code !== 0) return code;
  return stopping ? 130 : 0;
}
