// `run --async`: the command returns with the request id while a background process serves
// the request; status and results read it from the database meanwhile.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, sheepdog, TASKS } from './test/helpers.js';

let cwd: string;

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'sheepdog-cli-async-'));
  mkdirSync(join(cwd, 'db'));
  copyFileSync(TASKS, join(cwd, 'tasks.mjs'));
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('sheepdog run --async', () => {
  it('prints the request id and returns while a background process serves the tasks', async () => {
    const gate = mkdtempSync(join(cwd, 'gate-'));
    writeFileSync(
      join(cwd, 'args.json'),
      JSON.stringify([
        [1, gate],
        [2, gate],
        [3, gate],
        [4, gate],
      ]),
    );
    const r = await sheepdog(
      [
        'run',
        './tasks.mjs#gated',
        '--args',
        'args.json',
        '--async',
        '--db',
        'db/runs.sqlite',
        '--concurrency',
        '2',
      ],
      { cwd },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('1\n');
    expect(r.stderr).toMatch(/request 1 submitted; background process \d+ serves it/);
    expect(r.stderr).toContain('sheepdog results 1 --db db/runs.sqlite --wait');

    const status = JSON.parse(
      (await sheepdog(['status', '1', '--json', '--db', 'db/runs.sqlite'], { cwd })).stdout,
    );
    expect(status.done).toBe(0);
    writeFileSync(join(gate, 'go'), '');

    const results = await sheepdog(['results', '1', '--wait', '--db', 'db/runs.sqlite'], { cwd });
    expect(results.status).toBe(0);
    expect(jsonLines(results.stdout).map((l) => l.result)).toEqual([1, 2, 3, 4]);
    expect(results.stderr).toContain('4/4 finished');
    expect(existsSync(join(cwd, 'db', 'runs.sqlite.log'))).toBe(true);
    expect(readFileSync(join(cwd, 'db', 'runs.sqlite.log'), 'utf8')).toContain(
      'request 1: serving 4 task(s)',
    );
  }, 60_000);

  it('without --wait, results shows unfinished tasks as pending or running and exits 1', async () => {
    const gate = mkdtempSync(join(cwd, 'gate-'));
    writeFileSync(join(cwd, 'args.json'), JSON.stringify([[1, gate]]));
    const r = await sheepdog(
      ['run', './tasks.mjs#gated', '--args', 'args.json', '--async', '--db', 'db/runs.sqlite'],
      {
        cwd,
      },
    );
    const id = r.stdout.trim();
    const now = await sheepdog(['results', id, '--db', 'db/runs.sqlite'], { cwd });
    expect(now.status).toBe(1);
    expect(['pending', 'running']).toContain(jsonLines(now.stdout)[0]?.status);
    writeFileSync(join(gate, 'go'), '');
    const later = await sheepdog(
      ['results', id, '--wait', '--progress', 'none', '--db', 'db/runs.sqlite'],
      { cwd },
    );
    expect(later.status).toBe(0);
    expect(later.stderr).toBe('');
  }, 60_000);

  it('results --wait from another process waits through retries of lost tasks', async () => {
    writeFileSync(
      join(cwd, 'die.json'),
      JSON.stringify([
        [1, cwd],
        [2, cwd],
        [3, cwd],
      ]),
    );
    const r = await sheepdog(
      [
        'run',
        './tasks.mjs#dieOnce',
        '--args',
        'die.json',
        '--async',
        '--retries',
        '1',
        '--lost-grace',
        '200ms',
        '--poll-interval',
        '200ms',
        '--db',
        'db/die.sqlite',
      ],
      { cwd },
    );
    expect(r.status).toBe(0);
    const results = await sheepdog(
      ['results', r.stdout.trim(), '--wait', '--db', 'db/die.sqlite'],
      { cwd },
    );
    // On a failure, what results printed on stderr and the background process's log say why.
    const why = `${results.stderr}\n${readFileSync(join(cwd, 'db/die.sqlite.log'), 'utf8')}`;
    expect(jsonLines(results.stdout), why).toEqual([
      { index: 1, status: 'done', result: 1 },
      { index: 2, status: 'done', result: 2 },
      { index: 3, status: 'done', result: 3 },
    ]);
    expect(results.status, why).toBe(0);
  }, 60_000);

  it('serve leaves a request the background process serves, and says how to follow it', async () => {
    writeFileSync(join(cwd, 'long.json'), JSON.stringify([[1, 30_000]]));
    const db = ['--db', 'db/busy.sqlite'];
    const r = await sheepdog(['run', './tasks.mjs#slow', '--args', 'long.json', '--async', ...db], {
      cwd,
    });
    expect(r.status).toBe(0);
    const served = await sheepdog(['serve', '--progress', 'none', ...db], { cwd });
    expect(served.stderr).toContain(
      'request 1: not served here: the port its workers report to is in use, most likely by the process that started it',
    );
    expect(served.stderr).toContain('`sheepdog results 1 --db db/busy.sqlite --wait`');
    expect(served.stderr).not.toContain('getResults');
    expect(served.status).toBe(1);
    const cancelled = await sheepdog(['cancel', '1', ...db], { cwd });
    expect(cancelled.status, cancelled.stderr).toBe(0);
  }, 60_000);

  it('reports problems before going to the background, exit 2', async () => {
    const r = await sheepdog(['run', './tasks.mjs#nothing', '--args', 'args.json', '--async'], {
      cwd,
    });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('has no function exported as "nothing"');
  }, 30_000);
});
