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

function start(file: string, k: number): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(process.execPath, [file], {
    cwd: dir,
    env: { ...process.env, SHEEPDOG_TASK_ID: String(k) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const done = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(stderr);
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
    const { requestId, file } = request(
      async (x: number) => {
        await new Promise((r) => setTimeout(r, 20));
        return x;
      },
      200,
      { leaseMs: 1500, lingerMs: 10_000 },
    );
    const workers = [1, 2, 3, 4].map((k) => start(file, k));
    // Once worker 1 holds a lease, kill it without a chance to post.
    for (let i = 0; i < 200; i++) {
      if (server.storage.countByState(requestId).running > 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 200));
    workers[0]?.child.kill('SIGKILL');
    const codes = await Promise.all(workers.map((w) => w.done));
    expect(codes.slice(1)).toEqual([0, 0, 0]);
    const results = server.storage.getTasksWithResults(requestId);
    expect(results.map(([, r]) => (r === null ? null : decodeValue(r)))).toEqual(
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    const states = server.storage.getTaskStates(requestId);
    expect(states.every((s) => s.state === 'done')).toBe(true);
    expect(states.some((s) => s.attempts === 2)).toBe(true);
  }, 60_000);
});
