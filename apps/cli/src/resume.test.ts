// Picking requests up again: `serve` after the `run` process was SIGKILLed, `retry` of failed
// tasks, `cancel` from another process; all through the real command on the local backend.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTaskStates } from 'sheepdog';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  finished,
  jsonLines,
  sheepdog,
  start,
  TASKS,
  UNSERVABLE_DB,
  until,
} from './test/helpers.js';

let root: string;
let n = 0;

function workdir(args: unknown[]): string {
  n += 1;
  const dir = join(root, `r${n}`);
  mkdirSync(dir);
  copyFileSync(TASKS, join(dir, 'tasks.mjs'));
  writeFileSync(join(dir, 'args.json'), JSON.stringify(args));
  return dir;
}

/** Starts a run and SIGKILLs it once `finishedTasks` tasks have finished. */
async function runAndKill(cwd: string, extra: string[], finishedTasks: number): Promise<void> {
  const child = start(
    [
      'run',
      './tasks.mjs#slow',
      '--args',
      'args.json',
      '--progress',
      'lines',
      '--progress-interval',
      '50ms',
      ...extra,
    ],
    { cwd },
  );
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  const done = finished(child, 60_000);
  // Lines only come when counts change, and tasks may finish together: wait for at least this many.
  await until(() =>
    [...err.matchAll(/request 1: (\d+)\/\d+ finished/g)].some((m) => Number(m[1]) >= finishedTasks),
  );
  child.kill('SIGKILL');
  const r = await done;
  expect(r.signal).toBe('SIGKILL');
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sheepdog-cli-resume-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('sheepdog serve', () => {
  it('collects every result after the run process was SIGKILLed', async () => {
    const cwd = workdir([1, 2, 3, 4, 5, 6].map((x) => [x, 1000]));
    await runAndKill(cwd, ['--concurrency', '2', '--retries', '2', '--lost-grace', '1s'], 1);
    const before = JSON.parse((await sheepdog(['status', '1', '--json'], { cwd })).stdout);
    expect(before.done).toBeLessThan(6);

    const served = await sheepdog(['serve', '--progress', 'lines'], { cwd, timeoutMs: 90_000 });
    expect(served.stderr).toContain('serving request(s) 1 from ./sheepdog.sqlite');
    expect(served.stderr).toContain('request 1: finished (6 done, 0 failed, 0 lost, 0 cancelled)');
    expect(served.status).toBe(0);
    const results = await sheepdog(['results', '1'], { cwd });
    expect(results.status).toBe(0);
    expect(jsonLines(results.stdout).map((l) => l.result)).toEqual([1, 2, 3, 4, 5, 6]);

    const again = await sheepdog(['serve'], { cwd });
    expect(again.status).toBe(0);
    expect(again.stderr).toContain(
      'nothing to serve: every request in ./sheepdog.sqlite has finished',
    );
  }, 120_000);

  it('without retries marks what the killed run left behind lost, with the reason; exit 1', async () => {
    const cwd = workdir([1, 2, 3].map((x) => [x, 1500]));
    await runAndKill(cwd, ['--concurrency', '1', '--lost-grace', '500ms'], 1);
    const served = await sheepdog(['serve', '--progress', 'none'], { cwd, timeoutMs: 60_000 });
    expect(served.status).toBe(1);
    // A task that was running when the run died may still report to the new server (its worker
    // retries); the rest end lost, with the reason.
    const statuses = jsonLines((await sheepdog(['results', '1'], { cwd })).stdout).map(
      (l) => l.status,
    );
    expect(statuses[0]).toBe('done');
    expect(statuses.at(-1)).toBe('lost');
    expect(statuses.every((s) => s === 'done' || s === 'lost')).toBe(true);
    expect(served.stderr).toMatch(
      /request 1: finished \(\d done, 0 failed, \d lost, 0 cancelled\)/,
    );
    // In the CLI's words, not the library's (getTaskStates, retry(...)).
    expect(served.stderr).toContain(
      'see why with `sheepdog errors 1 --db ./sheepdog.sqlite`, and run the failed and lost ones again with `sheepdog retry 1 --db ./sheepdog.sqlite`',
    );
    expect(served.stderr).not.toContain('getTaskStates');
    const errors = await sheepdog(['errors', '1'], { cwd });
    expect(errors.stdout).toMatch(
      /task 3 lost \(\d attempts?\), arguments \[3,1500\]:\n\s+the process that ran the local job/,
    );
  }, 120_000);
});

describe('sheepdog serve, interrupted', () => {
  it('stops serving on Ctrl-C (SIGINT) with exit 130; serving again finishes the request', async () => {
    // Task 2 outlives the first serve by far, however slowly it starts: were its result to
    // arrive meanwhile, that serve would finish the request instead of being interrupted.
    const cwd = workdir([
      [1, 200],
      [2, 15_000],
    ]);
    await runAndKill(cwd, ['--concurrency', '2', '--retries', '1', '--lost-grace', '300ms'], 1);
    const serving = start(['serve', '--progress', 'none'], { cwd });
    let err = '';
    serving.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString('utf8');
    });
    const done = finished(serving, 60_000);
    await until(() => err.includes('serving request(s) 1'));
    serving.kill('SIGINT');
    const r = await done;
    expect(r.status).toBe(130);
    expect(r.stderr).toContain('request 1: stopped serving');
    expect(r.stderr).toContain('run `sheepdog serve --db ./sheepdog.sqlite` again to carry on');
    const again = await sheepdog(['serve', '--progress', 'none'], { cwd, timeoutMs: 60_000 });
    expect(again.status).toBe(0);
    expect(
      jsonLines((await sheepdog(['results', '1'], { cwd })).stdout).map((l) => l.result),
    ).toEqual([1, 2]);
  }, 120_000);
});

describe('sheepdog retry', () => {
  it('submits the failed tasks again and prints every line; then there is nothing to retry', async () => {
    const cwd = workdir([]);
    writeFileSync(join(cwd, 'args.json'), JSON.stringify([1, 2, 3].map((x) => [x, cwd])));
    const first = await sheepdog(['run', './tasks.mjs#flaky', '--args', 'args.json'], { cwd });
    expect(first.status).toBe(1);
    expect(jsonLines(first.stdout).map((l) => l.status)).toEqual(['failed', 'failed', 'failed']);
    expect(first.stderr).toContain('sheepdog retry 1 --db ./sheepdog.sqlite');

    const retried = await sheepdog(['retry', '1', '--progress', 'lines'], {
      cwd,
      timeoutMs: 60_000,
    });
    expect(retried.stderr).toContain('request 1: submitted 3 failed or lost task(s) again');
    expect(retried.status).toBe(0);
    expect(jsonLines(retried.stdout)).toEqual([
      { index: 1, status: 'done', result: 1 },
      { index: 2, status: 'done', result: 2 },
      { index: 3, status: 'done', result: 3 },
    ]);
    const errors = await sheepdog(['errors', '1'], { cwd });
    expect(errors.stdout).toContain('no task failed, was lost or was cancelled');

    const nothing = await sheepdog(['retry', '1'], { cwd });
    expect(nothing.status).toBe(0);
    expect(nothing.stderr).toContain('no task failed or was lost; nothing to retry');
  }, 120_000);

  it('refuses --no-wait on the local backend, whose tasks would die with the command', async () => {
    const cwd = workdir([]);
    writeFileSync(join(cwd, 'args.json'), JSON.stringify([[7, cwd]]));
    expect(
      (await sheepdog(['run', './tasks.mjs#flaky', '--args', 'args.json'], { cwd })).status,
    ).toBe(1);
    const retried = await sheepdog(['retry', '1', '--no-wait'], { cwd });
    expect(retried.status).toBe(2);
    expect(retried.stderr).toContain('runs on the local backend');
    expect(jsonLines((await sheepdog(['results', '1'], { cwd })).stdout)[0]?.status).toBe('failed');
  }, 60_000);
});

describe('requests the commands cannot pick up', () => {
  it('serve and retry say why in their own words: no stored port, or a custom backend', async () => {
    const cwd = workdir([]);
    // 1: made with the storage package alone, so nothing says where its workers report.
    // 2: made by the library on a backend of the user's own; task 1 failed.
    copyFileSync(UNSERVABLE_DB, join(cwd, 'sheepdog.sqlite'));

    const served = await sheepdog(['serve', '--progress', 'none'], { cwd });
    expect(served.status).toBe(1);
    expect(served.stderr).toContain(
      "request 1: not served: request 1 was stored without the port and host its workers report to (it was not made by `sheepdog run` or the library's map), so nothing can serve it; `sheepdog results 1 --db ./sheepdog.sqlite` shows what arrived",
    );
    expect(served.stderr).toContain(
      'request 2: not served: request 2 runs on the custom backend "mine", which only your code can rebuild: export that backend object as `backend` from a config file',
    );
    const retried = await sheepdog(['retry', '2'], { cwd });
    expect(retried.status).toBe(1);
    expect(retried.stderr).toContain(
      'could not retry request 2: request 2 runs on the custom backend "mine"',
    );
    for (const text of [served.stderr, retried.stderr]) {
      expect(text).not.toMatch(/getResults|config\.backend/);
    }
    // Nothing was changed: the failed task is still failed, the others still open.
    const after = join(cwd, 'sheepdog.sqlite');
    expect((await getTaskStates(2, after)).map((t) => t.state)).toEqual(['failed', 'pending']);
    expect((await getTaskStates(1, after)).map((t) => t.state)).toEqual(['pending']);
  }, 60_000);
});

describe('sheepdog cancel', () => {
  it('cancels a request served by another process; its open tasks end cancelled', async () => {
    const cwd = workdir([
      [1, 100],
      [2, 30_000],
      [3, 30_000],
    ]);
    const submitted = await sheepdog(
      ['run', './tasks.mjs#slow', '--args', 'args.json', '--async'],
      { cwd },
    );
    expect(submitted.status).toBe(0);
    let status: { done: number } = { done: 0 };
    const deadline = Date.now() + 30_000;
    while (status.done < 1 && Date.now() < deadline) {
      status = JSON.parse((await sheepdog(['status', '1', '--json'], { cwd })).stdout);
    }
    const cancelled = await sheepdog(['cancel', '1'], { cwd });
    expect(cancelled.status).toBe(0);
    expect(cancelled.stderr).toContain('request 1: cancelled 2 open task(s)');
    const results = await sheepdog(['results', '1'], { cwd });
    expect(results.status).toBe(1);
    expect(jsonLines(results.stdout).map((l) => l.status)).toEqual([
      'done',
      'cancelled',
      'cancelled',
    ]);
    const table = await sheepdog(['status'], { cwd });
    expect(table.stdout.split('\n')[1]).toMatch(/local +3 +1 +0 +0 +0 +0 +2$/);
    const again = await sheepdog(['cancel', '1'], { cwd });
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('no open task left to cancel');
  }, 90_000);
});
