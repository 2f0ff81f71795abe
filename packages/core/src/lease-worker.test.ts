// Lease-mode workers (the real bundle, in real processes, from a rendered job file) against a
// real server: every task reported once, failures per task, and a killed worker's chunk finished
// by the others once its lease runs out.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobFile } from '@sheepdog/job-file';
import { decodeValue, encodeArgs, encodeFunction, encodeNamespace } from '@sheepdog/serialize';
import { createRequest, getServer, type SheepdogServer } from '@sheepdog/server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

let dir: string;
let server: SheepdogServer;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-lease-worker-'));
  server = await getServer({ dbfile: join(dir, 'db.sqlite'), hostname: '127.0.0.1' });
});

afterEach(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

function request(
  f: (...args: never[]) => unknown,
  n: number,
  lease: { leaseMs?: number; lingerMs?: number } = {},
): { requestId: number; file: string } {
  const { requestId, token } = createRequest(
    server.storage,
    encodeFunction(f as (...args: unknown[]) => unknown),
    encodeNamespace({}),
    (function* () {
      for (let i = 1; i <= n; i++) yield encodeArgs([i]);
    })(),
    { config: { retries: 2 } },
  );
  const file = join(dir, `sheepdog-${requestId}.cjs`);
  const text = jobFile({
    url: server.url,
    token,
    requestId,
    nArgs: 4,
    shell: process.execPath,
    directivePrefix: null,
    lease,
  });
  writeFileSync(file, text, { mode: 0o600 });
  return { requestId, file };
}

function start(
  file: string,
  k: number,
  env: Record<string, string> = {},
): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(process.execPath, [file], {
    cwd: dir,
    env: { ...process.env, ...env, SHEEPDOG_TASK_ID: String(k) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const done = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      if (code !== 0 && code !== null && code !== 137) process.stderr.write(stderr);
      resolve(code);
    }),
  );
  return { child, done };
}

describe('lease-mode workers against a real server', () => {
  it('run 200 tasks through 4 workers: every result once, errors per task with a stack', async () => {
    const { requestId, file } = request((x: number) => {
      if (x % 50 === 0) throw new Error(`refusing ${x}`);
      return x * 10;
    }, 200);
    const codes = await Promise.all([1, 2, 3, 4].map((k) => start(file, k).done));
    expect(codes).toEqual([0, 0, 0, 0]);
    const states = server.storage.getTaskStates(requestId);
    expect(states.filter((s) => s.state === 'done')).toHaveLength(196);
    expect(states.filter((s) => s.state === 'failed').map((s) => s.jobIndex)).toEqual([
      50, 100, 150, 200,
    ]);
    const results = server.storage.getTasksWithResults(requestId);
    expect(results.map(([, r]) => (r === null ? null : decodeValue(r)))).toEqual(
      Array.from({ length: 200 }, (_, i) => ((i + 1) % 50 === 0 ? null : (i + 1) * 10)),
    );
    const errors = server.storage.getErrors(requestId);
    expect(new TextDecoder().decode(errors[0]?.[1])).toMatch(/Error: refusing 50\n\s+at /);
    expect(states.every((s) => s.attempts === 1)).toBe(true);
  }, 30_000);

  it('a worker killed mid-lease: its lease runs out and the other workers finish its tasks', async () => {
    const marker = join(dir, 'killed');
    // The first worker to run task 100 dies holding its chunk; the next attempt runs normally.
    const { requestId, file } = request(
      async (x: number) => {
        const fs = require('node:fs');
        await new Promise((r) => setTimeout(r, 10));
        if (x === 100 && !fs.existsSync(process.env.SHEEPDOG_TEST_MARKER)) {
          fs.writeFileSync(process.env.SHEEPDOG_TEST_MARKER, '');
          process.kill(process.pid, 'SIGKILL');
        }
        return x;
      },
      200,
      { leaseMs: 1500, lingerMs: 10_000 },
    );
    const workers = [1, 2, 3, 4].map((k) => start(file, k, { SHEEPDOG_TEST_MARKER: marker }));
    const codes = await Promise.all(workers.map((w) => w.done));
    // Exactly one worker was killed; the others finished everything.
    expect(codes.filter((code) => code === 0)).toHaveLength(3);
    const results = server.storage.getTasksWithResults(requestId);
    expect(results.map(([, r]) => (r === null ? null : decodeValue(r)))).toEqual(
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    const states = server.storage.getTaskStates(requestId);
    expect(states.every((s) => s.state === 'done')).toBe(true);
    expect(states[99]?.attempts).toBe(2);
  }, 60_000);
});
