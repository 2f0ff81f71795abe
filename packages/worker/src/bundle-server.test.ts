// The built bundle against the real @sheepdog/server, not the test's FakeServer: both ends take
// the paths, bodies and outcome frames from @sheepdog/protocol, and this shows they still meet.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { decodeValue, encodeArgs, encodeFunction, encodeNamespace } from '@sheepdog/serialize';
import { createRequest, getServer, type SheepdogServer } from '@sheepdog/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleRun } from './test/bundle-run.js';

let runner: BundleRun;
let server: SheepdogServer;

beforeAll(async () => {
  runner = new BundleRun('sheepdog bundle-server ');
  server = await getServer({ dbfile: join(runner.dir, 'db.sqlite'), hostname: '127.0.0.1' });
});

afterAll(async () => {
  await server.stop();
  rmSync(runner.dir, { recursive: true, force: true });
});

/** A request of `inputs.length` tasks of `f`, one input each. */
function request(f: (x: number) => unknown, inputs: readonly number[]) {
  return createRequest(
    server.storage,
    encodeFunction(f),
    encodeNamespace({ offset: 100 }),
    inputs.map((x) => encodeArgs(x)),
  );
}

/** Each task's decoded result, in job-index order; `null` where it stored none. */
function results(requestId: number): unknown[] {
  return server.storage
    .getTasksWithResults(requestId)
    .map(([, result]) => (result === null ? null : decodeValue(result)));
}

/** The error text of each failed task, by job index. */
function errors(requestId: number): [number, string][] {
  return server.storage
    .getErrors(requestId)
    .map(([, error, jobIndex]) => [jobIndex, Buffer.from(error).toString('utf8')]);
}

declare const offset: number;
const plusOffsetUnlessThree = (x: number): number => {
  if (x === 3) throw new Error('three is refused');
  return x + offset;
};

describe('the bundle and the server', () => {
  it('agree in lease mode: lease bodies, the code, and outcome frames of results and errors', async () => {
    const { requestId, token } = request(plusOffsetUnlessThree, [1, 2, 3, 4, 5, 6]);
    const file = runner.jobFile({
      url: server.url,
      token,
      requestId,
      // lingerMs under leaseMs: the last lease can reach the server before the post of the
      // chunk before it, see those tasks' leases still out, and the worker would linger for
      // them (a lease's length) instead of stopping.
      lease: { leaseMs: 60_000, maxChunk: 4, lingerMs: 1000 },
    });
    const ran = await runner.run(file, {});
    expect(ran.code).toBe(0);
    expect(ran.stderr).toContain(`request ${requestId}: this worker ran 6 task(s) (1 failed)`);
    expect(results(requestId)).toEqual([101, 102, null, 104, 105, 106]);
    expect(errors(requestId)).toEqual([[3, expect.stringContaining('three is refused')]]);
  });

  it('agree one task at a time: the task, result and error paths', async () => {
    const { requestId, token } = request(plusOffsetUnlessThree, [7, 3]);
    const file = runner.jobFile({ url: server.url, token, requestId });
    expect((await runner.run(file, { SHEEPDOG_TASK_ID: '1' })).code).toBe(0);
    expect((await runner.run(file, { SHEEPDOG_TASK_ID: '2' })).code).toBe(0);
    expect(results(requestId)).toEqual([107, null]);
    expect(errors(requestId)).toEqual([[2, expect.stringContaining('three is refused')]]);
  });

  it('agree on the exit code of a refusal: a wrong token is reported as unreported', async () => {
    const { requestId } = request(plusOffsetUnlessThree, [1]);
    const file = runner.jobFile({ url: server.url, token: 'wrong', requestId });
    const ran = await runner.run(file, { SHEEPDOG_TASK_ID: '1' });
    expect(ran.code).toBe(3);
    expect(ran.stderr).toContain('INVALID_TOKEN');
  });
});
