// What people watch while they wait: the progress bar in a real pseudo-terminal (util-linux
// `script`), plain lines without one, and Ctrl-C asking to cancel or detach.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cleanEnv, finished, jsonLines, start, TASKS, until } from './test/helpers.js';

let root: string;
let n = 0;

function workdir(args: unknown[]): string {
  n += 1;
  const dir = join(root, `p${n}`);
  mkdirSync(dir);
  copyFileSync(TASKS, join(dir, 'tasks.mjs'));
  writeFileSync(join(dir, 'args.json'), JSON.stringify(args));
  return dir;
}

/**
 * Runs the CLI in a pseudo-terminal: stdin, stdout and stderr are all the terminal. `script`
 * starts the command through `$SHELL -c`, or /bin/sh when SHELL is unset (as under CI); `exec`
 * keeps that shell out of the terminal's foreground group, because dash, unlike bash, would
 * take the Ctrl-C too and exit 130 after the CLI had finished.
 */
function inTerminal(args: string[], cwd: string): ReturnType<typeof spawn> {
  const command = `exec ${[process.execPath, CLI, ...args].map((w) => `'${w}'`).join(' ')}`;
  return spawn('script', ['-qfec', command, '/dev/null'], {
    cwd,
    env: cleanEnv({ TERM: 'xterm', COLUMNS: '160', LINES: '40' }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sheepdog-cli-progress-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('progress', () => {
  it('draws a bar with done/total, failed, lost, rate and ETA on a terminal', async () => {
    const cwd = workdir([
      [1, 300],
      [2, 300],
      [3, 300],
      [4, 300],
      [5, 300],
      [6, 300],
    ]);
    const r = await finished(
      inTerminal(['run', './tasks.mjs#slow', '--args', 'args.json', '--concurrency', '2'], cwd),
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /request 1 \[[█░]{30}\] \d\/6 \| \d done, 0 failed, 0 lost \| [\d.]+ tasks\/s \| ETA (\d+s|\d+m\d+s|\?)/,
    );
    expect(r.stdout).toMatch(/request 1 \[█{30}\] 6\/6 \| 6 done, 0 failed, 0 lost/);
    // The bar is redrawn in place (carriage returns), not printed line after line.
    expect(r.stdout).toMatch(/\r/);
    expect(r.stdout).not.toContain('[sheepdog] request 1: 0/6 finished');
    const lines = r.stdout.split(/\r?\n/).filter((l) => l.startsWith('{"index"'));
    expect(lines.map((l) => JSON.parse(l).result)).toEqual([1, 2, 3, 4, 5, 6]);
  }, 60_000);

  it('prints plain periodic lines when stderr is not a terminal', async () => {
    const cwd = workdir([
      [1, 500],
      [2, 500],
      [3, 500],
      [4, 500],
    ]);
    const r = await finished(
      start(
        [
          'run',
          './tasks.mjs#slow',
          '--args',
          'args.json',
          '--concurrency',
          '1',
          '--progress-interval',
          '200ms',
        ],
        { cwd },
      ),
    );
    expect(r.status).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('[sheepdog] request 1: '));
    expect(lines[0]).toContain('task(s) on local');
    expect(lines[1]).toMatch(
      /^\[sheepdog\] request 1: 0\/4 finished \(0 done, 0 failed, 0 lost\), [\d.]+ tasks\/s, ETA \?$/,
    );
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(lines.at(-1)).toMatch(
      /^\[sheepdog\] request 1: 4\/4 finished \(4 done, 0 failed, 0 lost\), [\d.]+ tasks\/s, ETA 0s$/,
    );
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr).not.toContain('█');
  }, 60_000);

  it('shows nothing with --progress none', async () => {
    const cwd = workdir([1, 2]);
    const r = await finished(
      start(['run', './tasks.mjs#square', '--args', 'args.json', '--progress', 'none'], { cwd }),
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  }, 60_000);
});

const QUESTION = '[c]ancel it, [d]etach and leave it, or [w]ait on? ';

/**
 * Runs `slow` over `args` two at a time in a terminal, presses Ctrl-C once the first task is
 * done, and, once the question is up, calls `answer` with what the terminal shows.
 */
async function interrupted(
  args: [number, number][],
  answer: (out: () => string, stdin: NodeJS.WritableStream) => Promise<void>,
): Promise<{ status: number | null; stdout: string; results: Record<string, unknown>[] }> {
  const child = inTerminal(
    ['run', './tasks.mjs#slow', '--args', 'args.json', '--concurrency', '2'],
    workdir(args),
  );
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  const done = finished(child, 60_000);
  await until(() => out.includes(`1/${args.length}`));
  child.stdin?.write('\x03');
  await until(() => out.includes(QUESTION));
  await answer(() => out, child.stdin as NodeJS.WritableStream);
  const r = await done;
  const results = r.stdout
    .split(/\r?\n/)
    .filter((l) => l.startsWith('{"index"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: r.status, stdout: r.stdout, results };
}

describe('Ctrl-C during run', () => {
  it('on a terminal asks, and [c] cancels the request: open tasks end cancelled, exit 1', async () => {
    const r = await interrupted(
      [
        [1, 100],
        [2, 20_000],
        [3, 20_000],
        [4, 20_000],
      ],
      async (_out, stdin) => {
        stdin.write('c');
      },
    );
    expect(r.status, r.stdout).toBe(1);
    expect(r.results[0]).toEqual({ index: 1, status: 'done', result: 1 });
    expect(r.results.slice(1).map((l) => l.status)).toEqual([
      'cancelled',
      'cancelled',
      'cancelled',
    ]);
  }, 60_000);

  it('on a terminal, [w] waits on: the running tasks did not get the SIGINT and finish', async () => {
    const r = await interrupted(
      [
        [1, 100],
        [2, 2500],
        [3, 2500],
      ],
      async (out, stdin) => {
        // While the question is up, the bar stays off the terminal: nothing is drawn after it.
        await new Promise((resolve) => setTimeout(resolve, 600));
        expect(out().slice(out().indexOf(QUESTION) + QUESTION.length)).toBe('');
        stdin.write('w');
      },
    );
    expect(r.status, r.stdout).toBe(0);
    expect(r.results).toEqual([
      { index: 1, status: 'done', result: 1 },
      { index: 2, status: 'done', result: 2 },
      { index: 3, status: 'done', result: 3 },
    ]);
  }, 60_000);

  it('on a terminal, [d] detaches and says how to carry on, exit 130', async () => {
    const cwd = workdir([
      [1, 20_000],
      [2, 20_000],
    ]);
    const child = inTerminal(
      ['run', './tasks.mjs#slow', '--args', 'args.json', '--db', 'my runs.sqlite'],
      cwd,
    );
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    const done = finished(child, 60_000);
    await until(() => out.includes('Ctrl-C to cancel or detach'));
    child.stdin?.write('\x03');
    await until(() => out.includes('[c]ancel it'));
    child.stdin?.write('d');
    const r = await done;
    expect(r.status).toBe(130);
    expect(r.stdout).toContain('detached from request 1');
    expect(r.stdout).toContain("sheepdog serve --db 'my runs.sqlite'");
    expect(r.stdout).toContain("sheepdog results 1 --db 'my runs.sqlite' --wait");
  }, 60_000);

  it('without a terminal detaches at once and prints how to resume, exit 130', async () => {
    const cwd = workdir([
      [1, 20_000],
      [2, 20_000],
    ]);
    const child = start(['run', './tasks.mjs#slow', '--args', 'args.json'], { cwd });
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString('utf8');
    });
    const done = finished(child, 30_000);
    await until(() => err.includes('Ctrl-C to detach'));
    child.kill('SIGINT');
    const r = await done;
    expect(r.status).toBe(130);
    expect(jsonLines(r.stdout)).toEqual([]);
    expect(r.stderr).toContain('[sheepdog] detached from request 1');
    expect(r.stderr).toContain('sheepdog serve --db ./sheepdog.sqlite');
  }, 60_000);
});
