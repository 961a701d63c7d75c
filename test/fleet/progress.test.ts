// The progress display of `uvfetch fetch`: a bar redrawn in place on a terminal, plain lines
// otherwise (the CLI tests see the plain form; the terminal form is checked here).

import { describe, it, expect } from 'vitest';
import { Writable } from 'node:stream';
import { Progress } from '../../tools/fleet/progress.js';

function sink(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  }) as unknown as NodeJS.WriteStream & { isTTY: boolean; columns: number };
  w.isTTY = isTTY;
  w.columns = 200;
  return { stream: w, text: () => out };
}

describe('fetch progress', () => {
  it('on a terminal: a bar redrawn in place with percent, rate, ETA, errors and connections', async () => {
    const s = sink(true);
    const p = new Progress(s.stream, 1000, 10, () => 3);
    p.start();
    for (let i = 0; i < 4; i++) p.add(i !== 0);
    await new Promise((r) => setTimeout(r, 300));
    p.note('a message');
    p.add(true);
    p.stop();
    const t = s.text();
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's escape sequences are the subject
    expect(t).toMatch(/\r\x1b\[2K\[#{10}\.{14}\] +40\.0% {2}4\/10 {2}\d+\/s {2}ETA \S+ {2}errors 1 {2}conns 3/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's escape sequences are the subject
    expect(t).toMatch(/\r\x1b\[2Ka message\n/);
    expect(t).toMatch(/\[#{12}\.{12}\] +50\.0% {2}5\/10 .*\n$/);
  });

  it('not a terminal: one plain line per interval, no total when reading stdin', async () => {
    const s = sink(false);
    const p = new Progress(s.stream, 100, undefined, () => 0);
    p.start();
    p.add(true);
    await new Promise((r) => setTimeout(r, 350));
    p.stop();
    const lines = s
      .text()
      .split('\n')
      .filter((l) => l !== '');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).toMatch(/^uvfetch fetch: 1 done {2}\d+\/s {2}errors 0 {2}conns 0 {2}elapsed \S+$/);
    expect(s.text()).not.toMatch(/\r/);
  });
});
