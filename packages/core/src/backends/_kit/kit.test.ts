import type { Deployer, ExecResult } from '@sheepdog/deployer';
import { describe, expect, it } from 'vitest';
import { isSheepdogError } from '../../errors.js';
import {
  backendError,
  describeExit,
  keptOnSuccess,
  leaseEnded,
  remoteFolder,
  renderJobFile,
  signalName,
} from './index.js';

describe('keptOnSuccess', () => {
  it('keeps an answer, shares one in flight, and asks again after a failure', async () => {
    const answers: Array<() => Promise<string>> = [
      () => Promise.reject(new Error('dropped')),
      () => Promise.resolve('home'),
    ];
    let asked = 0;
    const lookup = keptOnSuccess(() => (answers[asked++] as () => Promise<string>)());
    await expect(lookup()).rejects.toThrow('dropped');
    const [a, b] = await Promise.all([lookup(), lookup()]);
    expect([a, b, await lookup()]).toEqual(['home', 'home', 'home']);
    expect(asked).toBe(2);
  });
});

describe('remoteFolder', () => {
  function homeAt(home: string): { deployer: Pick<Deployer, 'exec'>; asked: string[] } {
    const asked: string[] = [];
    const deployer = {
      async exec(command: string): Promise<ExecResult> {
        asked.push(command);
        return { stdout: `${home}\n`, stderr: '', code: 0 };
      },
    };
    return { deployer, asked };
  }

  it('puts a relative folder, with or without ~/, under the remote home', async () => {
    const { deployer, asked } = homeAt('/home/u');
    expect(await remoteFolder(deployer, '.sheepdog')()).toBe('/home/u/.sheepdog');
    expect(await remoteFolder(deployer, '~/jobs')()).toBe('/home/u/jobs');
    expect(asked).toEqual(['printf %s "$HOME"', 'printf %s "$HOME"']);
  });

  it('takes an absolute folder as it is, asking nothing', async () => {
    const { deployer, asked } = homeAt('/home/u');
    expect(await remoteFolder(deployer, '/scratch/jobs')()).toBe('/scratch/jobs');
    expect(asked).toEqual([]);
  });
});

describe('exit explanations', () => {
  it('names signals, and the number where Node knows no name', () => {
    expect(signalName(9)).toBe('SIGKILL');
    expect(signalName(15)).toBe('SIGTERM');
    expect(signalName(200)).toBe('signal 200');
  });

  it("says what the worker's codes, a signal's status and any other status mean", () => {
    expect(describeExit(2)).toMatch(/^exit status 2: the worker could not start the task/);
    expect(describeExit(3)).toMatch(/^exit status 3: the worker could not reach the server/);
    expect(describeExit(137)).toBe('killed by SIGKILL (exit status 137)');
    expect(describeExit(1)).toBe('exit status 1');
  });
});

describe('leaseEnded', () => {
  it('gives every open index one reason naming the first workers that ended badly', () => {
    const ends = [1, 2, 3, 4].map((worker) => ({ worker, how: `exit status ${worker}` }));
    const reasons = leaseEnded([5, 6], ends, '42');
    expect(reasons.get(5)).toBe(
      'every lease-mode worker of job 42 has ended (worker 1: exit status 1; worker 2: exit status 2; worker 3: exit status 3) before this task reported',
    );
    expect(reasons.get(6)).toBe(reasons.get(5));
  });

  it('says the lease ran out when every worker ended cleanly', () => {
    expect(leaseEnded([1], []).get(1)).toMatch(
      /^every lease-mode worker has ended before this task reported \(its lease ran out/,
    );
  });
});

describe('renderJobFile', () => {
  const spec = { requestId: 3, url: 'http://h:1/', token: 't0k', indices: [2, 5], name: 'n' };
  const settings = { shell: '/usr/bin/node', directivePrefix: null };

  it('runs the tasks given, or in lease mode that many workers', () => {
    expect(renderJobFile(spec, { indices: [2, 5] }, settings)).toContain(
      'SheepdogWorker.main({"url":"http://h:1/","token":"t0k","requestId":3,"indices":[2,5]})',
    );
    const leased = renderJobFile(
      { ...spec, lease: { workers: 4, leaseMs: 9000 } },
      { indices: [2, 5] },
      settings,
    );
    expect(leased).toContain('4 lease-mode workers');
    expect(leased).toContain('"lease":{"leaseMs":9000}');
    expect(leased).not.toContain('"indices"');
  });
});

describe('backendError', () => {
  it('names the backend and carries a code, BACKEND_FAILED unless told', () => {
    const failed = backendError('slurm', 'squeue failed');
    expect(isSheepdogError(failed, 'BACKEND_FAILED')).toBe(true);
    expect(failed.message).toBe('[slurm] squeue failed');
    const refused = backendError('gridengine', 'too large', {
      code: 'SUBMIT_FAILED',
      requestId: 4,
    });
    expect(refused).toMatchObject({ code: 'SUBMIT_FAILED', requestId: 4 });
  });
});
