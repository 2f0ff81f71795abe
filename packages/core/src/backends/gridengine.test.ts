import type { Deployer, ExecResult } from '@sheepdog/deployer';
import { describe, expect, it } from 'vitest';
import { describeAccounting, gridengine } from './gridengine.js';

const SPEC = {
  requestId: 7,
  url: 'http://127.0.0.1:8080/',
  token: 'secret-token',
  name: 'sheepdog-7',
};

/** A stand-in for the Deployer: the first `drops` commands fail as a dropped connection would. */
function flakyDeployer(drops: number): { deployer: Deployer; commands: string[] } {
  const commands: string[] = [];
  let left = drops;
  const deployer = {
    async exec(command: string): Promise<ExecResult> {
      commands.push(command);
      if (left > 0) {
        left -= 1;
        throw new Error('connection lost');
      }
      return { stdout: command.includes('HOME') ? '/home/u' : '', stderr: '', code: 0 };
    },
    async deploy(_text: string, _requestId: number, dir: string, fileName: string) {
      return `${dir}/${fileName}`;
    },
    async submit(): Promise<string> {
      return '143';
    },
    async close(): Promise<void> {},
  };
  return { deployer: deployer as unknown as Deployer, commands };
}

describe('gridengine backend (fake deployer)', () => {
  it('asks again for the home folder after a lookup that failed', async () => {
    const { deployer, commands } = flakyDeployer(1);
    const backend = gridengine({ host: 'head', deployer });
    await expect(backend.submit({ ...SPEC, indices: [1] })).rejects.toThrow(/connection lost/);
    await expect(backend.submit({ ...SPEC, indices: [1] })).resolves.toMatchObject({
      jobId: '143',
      meta: { directory: '/home/u/.sheepdog' },
    });
    // Once found, it is kept: one more submission asks nothing.
    await backend.submit({ ...SPEC, indices: [1] });
    expect(commands.filter((c) => c.includes('HOME'))).toHaveLength(2);
  });
});

describe('describeAccounting', () => {
  const record = (exitStatus: number, failed = '0') => ({
    taskId: 1,
    failed,
    exitStatus,
    qsubTime: '',
  });

  it("explains the worker's exit codes 2 and 3", () => {
    expect(describeAccounting(record(2))).toMatch(/exit status 2: the worker could not start/);
    expect(describeAccounting(record(3))).toMatch(/exit status 3: the worker could not reach/);
  });
});
