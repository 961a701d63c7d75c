// Runs the compiled `uvfetch` CLI (dist/tools/cli.js, package.json's bin) as a child process for the CLI tests.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cli = path.join(root, 'dist', 'tools', 'cli.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Compiles dist/ when the CLI or its modules are missing (a fresh clone before `npm run build`). */
export function ensureCliBuilt(): void {
  const needed = [
    cli,
    path.join(root, 'dist', 'index.js'),
    path.join(root, 'dist', 'tools', 'loopback-server.js'),
    path.join(root, 'dist', 'tools', 'bench.js'),
  ];
  if (needed.every((f) => existsSync(f))) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  for (const config of ['tsconfig.json', 'tsconfig.tools.json']) {
    execFileSync(process.execPath, [tsc, '-p', path.join(root, config)], { cwd: root, stdio: 'inherit' });
  }
}

/** Runs `node dist/tools/cli.js ...args`; rejects (after killing it) if it outlives `timeoutMs`. */
export function runCli(args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`uvfetch ${args.join(' ')} timed out\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
