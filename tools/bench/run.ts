// `uvfetch bench`: the run over scenarios, rounds and clients, its progress line and the
// human-readable report.

// ---------------------------------------------------------------------------------------------
// Progress on stderr: a redrawn line on a terminal, else one dot per finished segment.

import * as os from 'node:os';
import { VERSION } from 'uvfetch';
import { startLoopbackServer } from '../loopback-server.js';
import { benchCertificate, startTlsLoopbackServer } from '../tls-loopback.js';
import {
  BASELINE,
  type BenchConfig,
  type BenchReport,
  type ClientName,
  type ClientSummary,
  findUndici,
  findWrk,
  fmtInt,
  fmtMs,
  median,
  round,
} from './config.js';
import { type BenchServer, type Segment, type SegmentTarget, runClientSegment, runWrkSegment } from './segments.js';

export class Progress {
  readonly #tty: boolean;
  readonly #enabled: boolean;
  #timer: NodeJS.Timeout | undefined;
  #state = '';
  #phase = '';
  #phaseStart = 0;
  #last = '';
  #dotsOpen = false;

  constructor(enabled: boolean) {
    this.#enabled = enabled;
    this.#tty = process.stderr.isTTY === true;
  }

  scenarioStart(name: string): void {
    if (!this.#enabled) return;
    if (!this.#tty) {
      process.stderr.write(`uvfetch bench: ${name} `);
      this.#dotsOpen = true;
    }
  }

  segmentStart(state: string): void {
    this.#state = state;
    this.phase('starting');
    if (this.#enabled && this.#tty && this.#timer === undefined) {
      this.#timer = setInterval(() => this.#draw(), 250);
      this.#timer.unref();
    }
  }

  phase(p: string): void {
    this.#phase = p;
    this.#phaseStart = Date.now();
    this.#draw();
  }

  segmentDone(summary: string): void {
    this.#last = summary;
    if (!this.#enabled) return;
    if (this.#tty) this.#draw();
    else process.stderr.write('.');
  }

  scenarioDone(): void {
    if (!this.#enabled) return;
    if (!this.#tty && this.#dotsOpen) {
      process.stderr.write(' done\n');
      this.#dotsOpen = false;
    }
  }

  note(s: string): void {
    if (!this.#enabled) return;
    if (this.#tty) process.stderr.write('\r\x1b[2K');
    else if (this.#dotsOpen) process.stderr.write('\n');
    process.stderr.write(`${s}\n`);
    if (!this.#tty && this.#dotsOpen) process.stderr.write('  ');
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (!this.#enabled) return;
    if (this.#tty) process.stderr.write('\r\x1b[2K');
    else if (this.#dotsOpen) process.stderr.write('\n');
    this.#dotsOpen = false;
  }

  #draw(): void {
    if (!this.#enabled || !this.#tty) return;
    const el = ((Date.now() - this.#phaseStart) / 1000).toFixed(1);
    // A phase is e.g. 'measuring /3s': the elapsed time goes before the slash.
    const ph = this.#phase.includes(' /') ? this.#phase.replace(' /', ` ${el}/`) : `${this.#phase} ${el}s`;
    let line = `uvfetch bench: ${this.#state}  ${ph}${this.#last ? `  | last: ${this.#last}` : ''}`;
    const cols = process.stderr.columns;
    if (cols !== undefined && cols > 10 && line.length >= cols) line = line.slice(0, cols - 1);
    process.stderr.write(`\r\x1b[2K${line}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The run.

export const LABELS: Record<string, string> = {
  uvfetch: 'uvfetch',
  'undici-pool': 'undici-pool',
  'undici-agent': 'undici-agent',
  'node-http': 'node-http',
  fetch: 'fetch',
  'uvfetch-fetch': 'uvfetch fetch()',
  'undici-fetch': 'undici fetch()',
  wrk: 'wrk (C ceiling)',
};

/** A segment whose client process failed: no numbers, one error. */
export function failedSegment(message: string): Segment {
  const code = /exited early|timed out/.test(message) ? 'CLIENT_PROCESS_FAILED' : 'CLIENT_ERROR';
  return {
    requests: 0,
    errors: 1,
    errorCodes: { [code]: 1 },
    elapsedS: 0,
    rps: NaN,
    latencyMs: null,
    eventLoopP99Ms: NaN,
    rssBytes: NaN,
    clientCpuPercent: NaN,
    serverCpuPercent: null,
    serverTls: null,
  };
}

export function summarize(name: string, segs: Segment[], serverWorkers: number | null): Omit<ClientSummary, 'ratioToUndiciPool' | 'ratioToWrk'> {
  const rpsAll = segs.map((s) => s.rps).filter((x) => Number.isFinite(x));
  const rps = rpsAll.length > 0 ? rpsAll : [0];
  const lat = segs.filter((s) => s.latencyMs !== null).map((s) => s.latencyMs!);
  const errorCodes: Record<string, number> = {};
  for (const s of segs) for (const [k, v] of Object.entries(s.errorCodes)) errorCodes[k] = (errorCodes[k] ?? 0) + v;
  const finite = (xs: number[]): number[] => xs.filter((x) => Number.isFinite(x));
  const rss = finite(segs.map((s) => s.rssBytes));
  const eld = finite(segs.map((s) => s.eventLoopP99Ms));
  const ccpu = finite(segs.map((s) => s.clientCpuPercent));
  const scpu = segs.map((s) => s.serverCpuPercent).filter((x): x is number => x !== null && Number.isFinite(x));
  const scpuMax = scpu.length > 0 ? Math.max(...scpu) : null;
  const tlsSegs = segs.map((s) => s.serverTls).filter((x): x is NonNullable<Segment['serverTls']> => x !== null);
  const serverTls =
    tlsSegs.length === 0
      ? null
      : tlsSegs.reduce((a, x) => ({ requests: a.requests + x.requests, handshakes: a.handshakes + x.handshakes, resumed: a.resumed + x.resumed }), {
          requests: 0,
          handshakes: 0,
          resumed: 0,
        });
  return {
    client: name,
    label: LABELS[name] ?? name,
    rps: {
      median: round(median(rps), 1),
      min: round(Math.min(...rps), 1),
      max: round(Math.max(...rps), 1),
      rounds: segs.map((x) => (Number.isFinite(x.rps) ? round(x.rps, 1) : null)),
    },
    latencyMs: lat.length > 0 ? { p50: round(median(lat.map((l) => l.p50))), p99: round(median(lat.map((l) => l.p99))) } : null,
    rssMiB: rss.length > 0 ? round(Math.max(...rss) / (1024 * 1024), 1) : null,
    eventLoopP99Ms: eld.length > 0 ? round(median(eld)) : null,
    clientCpuPercent: ccpu.length > 0 ? round(median(ccpu), 1) : null,
    serverCpuPercent: scpu.length > 0 ? round(median(scpu), 1) : null,
    serverCpuPercentMax: scpuMax === null ? null : round(scpuMax, 1),
    serverBound: scpuMax !== null && serverWorkers !== null && scpuMax >= 90 * serverWorkers,
    requests: segs.reduce((a, s) => a + s.requests, 0),
    errors: segs.reduce((a, s) => a + s.errors, 0),
    errorCodes,
    serverTls,
  };
}

export async function runBench(cfg: BenchConfig): Promise<BenchReport> {
  const notes: string[] = [];
  const progress = new Progress(cfg.progress !== false);
  const version = VERSION;

  // Which clients can run here.
  let clients = [...cfg.clients];
  const undici = clients.some((c) => c.startsWith('undici-')) ? findUndici() : null;
  if (undici === null && clients.some((c) => c.startsWith('undici-'))) {
    const skipped = clients.filter((c) => c.startsWith('undici-'));
    clients = clients.filter((c) => !c.startsWith('undici-'));
    notes.push(`undici is not installed here: skipped ${skipped.join(', ')} (npm install --no-save undici@7 to compare)`);
  } else if (undici !== null && !undici.version.startsWith('7.')) {
    notes.push(`undici ${undici.version} found (this benchmark is meant for undici 7)`);
  }
  if (typeof fetch !== 'function' && clients.includes('fetch')) {
    clients = clients.filter((c) => c !== 'fetch');
    notes.push('no global fetch in this Node: skipped fetch');
  }
  let wrk: { version: string } | null = null;
  if (cfg.withWrk) {
    wrk = findWrk();
    if (wrk === null) notes.push('--with-wrk: wrk not found on PATH (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk), continuing without it');
  }
  if (!clients.includes(BASELINE)) notes.push(`${BASELINE} is not part of this run: no ratios to it`);
  if (cfg.url !== undefined) notes.push('--url: scenarios only set concurrency and connection reuse; the server decides bodies; no server CPU');
  if (cfg.url === undefined && cfg.scenarios.some((s) => s.tls)) {
    notes.push(
      'HTTPS: TLS session resumption is off in every client (uvfetch tls.sessionCacheSize 0; undici connect.maxCachedSessions 0; ' +
        "node:https Agent maxCachedSessions 0; fetch: a dispatcher of Node's bundled undici with maxCachedSessions 0, " +
        'the global fetch takes no TLS options); the server accepts session tickets and counts resumed handshakes. ' +
        ((cfg.httpsTrust ?? 'env') === 'env'
          ? 'Clients trust the test CA through their default trust store (NODE_EXTRA_CA_CERTS), no ca option. '
          : 'Clients trust the test CA through an explicit ca option (--https-trust ca). ') +
        'node-http is node:https in HTTPS scenarios.',
    );
  }
  for (const n of notes) progress.note(`uvfetch bench: ${n}`);
  const names: string[] = [...clients, ...(wrk !== null ? ['wrk'] : [])];

  const report: BenchReport = {
    tool: 'uvfetch bench',
    uvfetchVersion: version,
    date: new Date().toISOString(),
    machine: {
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      cores: os.cpus().length,
      node: process.version,
      platform: process.platform,
      arch: process.arch,
    },
    pinning: { pinned: cfg.pin !== null, client: cfg.pin?.client ?? null, server: null, note: cfg.pinNote },
    settings: {
      durationS: cfg.durationS,
      warmupS: cfg.warmupS,
      rounds: cfg.rounds,
      concurrency: cfg.concurrency ?? null,
      clients: names,
      url: cfg.url ?? null,
      withWrk: cfg.withWrk,
      httpsServer: cfg.httpsServer ?? 'auto',
      httpsTrust: cfg.httpsTrust ?? 'env',
      tlsResumption: 'off',
    },
    versions: {
      uvfetch: version,
      undici: undici?.version ?? null,
      nodeFetchUndici: process.versions.undici ?? null,
      wrk: wrk?.version ?? null,
    },
    baseline: BASELINE,
    notes,
    scenarios: [],
    ok: true,
  };

  const totalSegments = cfg.scenarios.length * cfg.rounds * names.length;
  let segIndex = 0;
  try {
    for (const scenario of cfg.scenarios) {
      const concurrency = cfg.concurrency ?? scenario.concurrency;
      let server: BenchServer | null = null;
      let url = cfg.url;
      let tlsTarget: SegmentTarget['tls'] = null;
      const pinning = cfg.pin !== null ? { pinTo: cfg.pin.server } : { pin: cfg.pinNote !== '--no-pin' };
      if (url === undefined && scenario.tls) {
        try {
          const cert = benchCertificate();
          tlsTarget = { caPem: cert.caPem, caFile: cert.caFile, trust: cfg.httpsTrust ?? 'env' };
          const choice = cfg.httpsServer ?? 'auto';
          server = await startTlsLoopbackServer({
            bodySize: scenario.bodySize,
            keepAlive: scenario.keepAlive,
            cert,
            workers: cfg.serverWorkers,
            prefer: choice === 'node' ? 'node-https' : choice,
            ...pinning,
          });
        } catch (e) {
          // No openssl (or no nginx with --https-server nginx): skip this scenario, say why.
          const msg = `${scenario.name} skipped: ${e instanceof Error ? e.message : String(e)}`;
          notes.push(msg);
          progress.note(`uvfetch bench: ${msg}`);
          report.ok = false;
          continue;
        }
      } else if (url === undefined) {
        const plain = await startLoopbackServer({
          bodySize: scenario.bodySize,
          chunked: scenario.chunked,
          keepAlive: scenario.keepAlive,
          workers: cfg.serverWorkers,
          ...pinning,
        });
        server = { ...plain, kind: 'loopback', label: 'uvfetch loopback', stats: () => plain.stats(), close: () => plain.close() };
      }
      if (server !== null) {
        url = `${server.url}/bench`;
        report.pinning.server = server.pinnedTo;
      }
      const target: SegmentTarget = { url: url!, server, scenario, concurrency, tls: tlsTarget };
      const segs = new Map<string, Segment[]>(names.map((n) => [n, []]));
      progress.scenarioStart(scenario.name);
      try {
        for (let r = 1; r <= cfg.rounds; r++) {
          for (const name of names) {
            segIndex++;
            progress.segmentStart(`[${segIndex}/${totalSegments}] ${scenario.name} round ${r}/${cfg.rounds} ${name}`);
            const onPhase = (p: string): void => progress.phase(p);
            let seg: Segment;
            try {
              seg =
                name === 'wrk'
                  ? await runWrkSegment(target, cfg, onPhase)
                  : await runClientSegment(name as ClientName, target, cfg, undici?.entry ?? null, onPhase);
            } catch (e) {
              // A client process that crashed or hung: count it as a failed run, keep going.
              const message = e instanceof Error ? e.message : String(e);
              progress.note(`uvfetch bench: ${scenario.name} round ${r} ${name}: ${message}`);
              seg = failedSegment(message);
            }
            segs.get(name)!.push(seg);
            progress.segmentDone(`${name} ${fmtInt(seg.rps)} req/s${seg.errors > 0 ? ` (${seg.errors} errors)` : ''}`);
          }
        }
      } finally {
        progress.scenarioDone();
        if (server !== null) await server.close();
      }
      const workers = server?.workers ?? null;
      const summaries = names.map((n) => summarize(n, segs.get(n)!, workers));
      const base = summaries.find((s) => s.client === BASELINE);
      const wrkS = summaries.find((s) => s.client === 'wrk');
      const full: ClientSummary[] = summaries.map((s) => ({
        ...s,
        ratioToUndiciPool: base !== undefined && base.rps.median > 0 ? round(s.rps.median / base.rps.median) : null,
        ratioToWrk: wrkS !== undefined && wrkS.rps.median > 0 ? round(s.rps.median / wrkS.rps.median) : null,
      }));
      if (full.some((s) => s.errors > 0)) report.ok = false;
      report.scenarios.push({
        ...scenario,
        description:
          server === null
            ? `--url target, ${scenario.keepAlive ? 'keep-alive' : 'new connection per request'}, concurrency ${concurrency}`
            : scenario.description.replace(/concurrency \d+/, `concurrency ${concurrency}`),
        concurrency,
        server:
          server === null
            ? null
            : { kind: server.kind, label: server.label, url: server.url, workers: server.workers, transport: server.transport, pinnedTo: server.pinnedTo },
        clients: full,
      });
    }
  } finally {
    progress.stop();
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Human output.

export function table(header: string[], rows: string[][], leftCols = 1): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i < leftCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

export function formatReport(r: BenchReport): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`uvfetch bench — uvfetch ${r.uvfetchVersion}, ${r.date.slice(0, 16).replace('T', ' ')} UTC`);
  out.push(`machine: ${m.cpuModel}, ${m.cores} cores, Node ${m.node}, ${m.platform}/${m.arch}`);
  out.push(
    r.pinning.pinned
      ? `pinning: client processes on CPU ${r.pinning.client}, ` +
          (r.settings.url !== null ? 'server external (not pinned)' : `server on CPU ${r.pinning.server ?? '-'}`) +
          ' (taskset)'
      : `pinning: none (${r.pinning.note})`,
  );
  const v = r.versions;
  out.push(
    `clients: ${r.settings.clients
      .map((c) =>
        c === 'uvfetch'
          ? `uvfetch ${v.uvfetch}`
          : c === 'undici-pool'
            ? `undici ${v.undici} Pool.request`
            : c === 'undici-agent'
              ? 'undici request()+Agent'
              : c === 'node-http'
                ? `node:http${r.scenarios.some((s) => s.tls) ? '/node:https' : ''} keep-alive Agent`
                : c === 'fetch'
                  ? `global fetch (undici ${v.nodeFetchUndici ?? '?'})`
                  : c === 'uvfetch-fetch'
                    ? `uvfetch ${v.uvfetch} fetch()`
                    : c === 'undici-fetch'
                      ? `undici ${v.undici} fetch()`
                      : `wrk ${v.wrk} -t1`,
      )
      .join(', ')}`,
  );
  out.push(
    `method: ${r.settings.rounds} round(s), clients interleaved, each a fresh process: ${r.settings.warmupS} s warm-up + ` +
      `${r.settings.durationS} s measured; every body read fully; ${r.settings.url !== null ? `target ${r.settings.url}` : 'embedded loopback server (own process)'}`,
  );
  for (const n of r.notes) out.push(`note: ${n}`);

  for (const s of r.scenarios) {
    out.push('');
    const srv =
      s.server === null
        ? ''
        : `  [server: ${s.server.kind === 'loopback' ? '' : `${s.server.label}, `}${s.server.workers} process(es), ${s.server.transport}` +
          (s.server.pinnedTo !== null ? `, CPU ${s.server.pinnedTo}` : '') +
          ']';
    out.push(`${s.name}: ${s.description}${srv}`);
    const header = ['client', 'req/s median (min–max)', 'p50', 'p99', 'RSS', 'ELD p99', 'errors', `vs ${r.baseline}`, 'client CPU', 'server CPU'];
    const rows = s.clients.map((c) => [
      c.label,
      `${fmtInt(c.rps.median)} (${fmtInt(c.rps.min)}–${fmtInt(c.rps.max)})`,
      fmtMs(c.latencyMs?.p50),
      fmtMs(c.latencyMs?.p99),
      c.rssMiB === null ? '-' : `${c.rssMiB.toFixed(0)} MiB`,
      fmtMs(c.eventLoopP99Ms),
      String(c.errors),
      c.ratioToUndiciPool === null ? '-' : `${c.ratioToUndiciPool.toFixed(2)}x`,
      c.clientCpuPercent === null ? '-' : `${c.clientCpuPercent.toFixed(0)}%`,
      c.serverCpuPercent === null ? '-' : `${c.serverCpuPercent.toFixed(0)}%${c.serverBound ? '*' : ''}`,
    ]);
    out.push(...table(header, rows));
    const uf = s.clients.find((c) => c.client === 'uvfetch-fetch');
    const gf = s.clients.find((c) => c.client === 'fetch');
    if (uf !== undefined && gf !== undefined && gf.rps.median > 0) {
      // Also per client CPU: on a shared machine a client may not get its whole core.
      const cpuUs = (c: ClientSummary) => (c.clientCpuPercent !== null && c.rps.median > 0 ? (c.clientCpuPercent / 100) * (1e6 / c.rps.median) : Number.NaN);
      const req = s.clients.find((c) => c.client === 'uvfetch');
      let line = `uvfetch fetch() / global fetch: ${(uf.rps.median / gf.rps.median).toFixed(2)}x req/s`;
      const perCpu = cpuUs(gf) / cpuUs(uf);
      if (Number.isFinite(perCpu)) line += `, ${perCpu.toFixed(2)}x per client CPU second`;
      if (req !== undefined && req.rps.median > 0 && uf.rps.median > 0) {
        line += `; fetch() costs ${(1e6 / uf.rps.median - 1e6 / req.rps.median).toFixed(1)} µs/request over request()`;
        const cpu = cpuUs(uf) - cpuUs(req);
        if (Number.isFinite(cpu)) line += ` (${cpu.toFixed(1)} µs of client CPU: ${cpuUs(uf).toFixed(1)} vs ${cpuUs(req).toFixed(1)})`;
      }
      out.push(line);
    }
    const uv = s.clients.find((c) => c.client === 'uvfetch');
    if (uv !== undefined && uv.ratioToWrk !== null) {
      out.push(`uvfetch reaches ${uv.ratioToWrk.toFixed(2)} of wrk's req/s (the C ceiling against this server).`);
    }
    const bound = s.clients.filter((c) => c.serverBound);
    if (bound.length > 0 && s.server !== null) {
      out.push(
        `* server used ~100% of its ${s.server.workers} core(s) in some round for ${bound.map((c) => c.client).join(', ')}: ` +
          'those numbers are bounded by the server, not the client.',
      );
    }
    const tlsRows = s.clients.filter((c) => c.serverTls !== null);
    if (tlsRows.length > 0) {
      out.push(
        'server-side, measured windows: ' +
          tlsRows
            .map(
              (c) =>
                `${c.client} ${fmtInt(c.serverTls!.handshakes)} TLS handshakes (${fmtInt(c.serverTls!.resumed)} resumed) for ${fmtInt(c.serverTls!.requests)} requests`,
            )
            .join('; '),
      );
    }
    const errs = s.clients.filter((c) => c.errors > 0);
    for (const c of errs) {
      out.push(
        `errors ${c.client}: ${Object.entries(c.errorCodes)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')}`,
      );
    }
  }
  return out.join('\n');
}
