import type { Deployer, ExecResult } from '@sheepdog/deployer';
import { describe, expect, it } from 'vitest';
import type { Submission } from '../backend.js';
import { parseConfig, toStoredConfig } from '../config.js';
import { resolveBackend } from './index.js';
import {
  compressIndices,
  describeSacct,
  MAX_ARRAY_SPEC_LENGTH,
  parseLimits,
  parseSacct,
  parseSqueue,
  planSubmission,
  slurm,
} from './slurm.js';

const SPEC = {
  requestId: 7,
  url: 'http://127.0.0.1:8080/',
  token: 'secret-token',
  name: 'sheepdog-7',
};

type Reply = Partial<ExecResult> | ((command: string) => Partial<ExecResult>);

/** A stand-in for the Deployer: records commands and uploads, answers from a script. */
function fakeDeployer(replies: Array<[RegExp, Reply]>): {
  deployer: Deployer;
  commands: string[];
  files: Map<string, string>;
} {
  const commands: string[] = [];
  const files = new Map<string, string>();
  const deployer = {
    async exec(command: string): Promise<ExecResult> {
      commands.push(command);
      const found = replies.find(([pattern]) => pattern.test(command));
      const reply = found === undefined ? {} : found[1];
      const result = typeof reply === 'function' ? reply(command) : reply;
      return { stdout: '', stderr: '', code: 0, ...result };
    },
    async deploy(text: string, _requestId: number, dir: string, fileName: string): Promise<string> {
      files.set(fileName, text);
      return `${dir}/${fileName}`;
    },
    async close(): Promise<void> {},
  };
  return { deployer: deployer as unknown as Deployer, commands, files };
}

const CONFIG = [
  /^scontrol show config$/,
  { stdout: 'MaxArraySize = 10001\nMaxJobCount = 10000\n' },
] as [RegExp, Reply];
const HOME = [/HOME/, { stdout: '/home/u' }] as [RegExp, Reply];

describe('compressIndices', () => {
  it('writes runs as ranges and lone indices as themselves', () => {
    expect(compressIndices([1, 2, 3, 4, 5, 9, 12, 13, 14])).toBe('1-5,9,12-14');
    expect(compressIndices([2, 5, 7])).toBe('2,5,7');
    expect(compressIndices([3])).toBe('3');
    expect(compressIndices([1, 2])).toBe('1-2');
  });
});

describe('parseLimits', () => {
  it('reads MaxArraySize and MaxJobCount from scontrol show config', () => {
    const text =
      'MailProg = /bin/mail\nMaxArraySize            = 10001\nMaxJobCount             = 10000\nMaxJobId = 67043328\n';
    expect(parseLimits(text)).toEqual({ maxArraySize: 10001, maxJobCount: 10000 });
  });

  it("falls back to SLURM's defaults for what it cannot read", () => {
    expect(parseLimits('')).toEqual({ maxArraySize: 1001, maxJobCount: 10000 });
  });
});

describe('planSubmission', () => {
  const limits = { maxArraySize: 11, maxJobCount: 100 };

  it('submits indices below MaxArraySize as themselves, in one sbatch call', () => {
    expect(planSubmission([2, 5, 7], limits)).toEqual([
      { array: '2,5,7', indices: [2, 5, 7], mapped: false },
    ]);
  });

  it('maps indices at or above MaxArraySize through the job file, in chunks below it', () => {
    const indices = Array.from({ length: 25 }, (_, i) => i + 1);
    const parts = planSubmission(indices, limits);
    expect(parts.map((p) => [p.array, p.mapped])).toEqual([
      ['1-10', false],
      ['1-10', true],
      ['1-5', true],
    ]);
    expect(parts[1]?.indices).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    expect(parts[2]?.indices).toEqual([21, 22, 23, 24, 25]);
  });

  it('splits an --array value longer than sbatch accepts at a comma', () => {
    const odd = Array.from({ length: 3000 }, (_, i) => 2 * i + 1);
    const parts = planSubmission(odd, { maxArraySize: 10001, maxJobCount: 10000 });
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(part.array.length).toBeLessThanOrEqual(MAX_ARRAY_SPEC_LENGTH);
    expect(parts.flatMap((p) => p.indices)).toEqual(odd);
    expect(parts.every((p) => !p.mapped)).toBe(true);
  });

  it('refuses more tasks than MaxJobCount, saying what to do', () => {
    const indices = Array.from({ length: 101 }, (_, i) => i + 1);
    expect(() => planSubmission(indices, limits)).toThrow(
      /MaxJobCount of 100.*fewer, larger tasks/,
    );
  });
});

describe('parsers', () => {
  it('reads squeue -r lines', () => {
    expect(parseSqueue('40|22|RUNNING\n40|3|COMPLETING\n\n')).toEqual([
      { jobId: '40', taskId: 22, state: 'RUNNING' },
      { jobId: '40', taskId: 3, state: 'COMPLETING' },
    ]);
  });

  it('reads sacct records, expands collapsed ones and drops those that name no task', () => {
    const text = [
      '47|COMPLETED|0:0',
      '47 allocation|COMPLETED|0:0',
      '69_7|CANCELLED by 1001|0:0',
      '69_[8-10%1]|CANCELLED by 1001|0:0',
      '65_3|FAILED|0:9',
    ].join('\n');
    expect(parseSacct(text).map((r) => `${r.jobId}_${r.taskId} ${r.state}`)).toEqual([
      '69_7 CANCELLED by 1001',
      '69_8 CANCELLED by 1001',
      '69_9 CANCELLED by 1001',
      '69_10 CANCELLED by 1001',
      '65_3 FAILED',
    ]);
  });
});

describe('describeSacct', () => {
  const record = (state: string, exitCode: string) => ({ jobId: '1', taskId: 1, state, exitCode });

  it('names the limit, the signal, the exit status or who cancelled', () => {
    expect(describeSacct(record('TIMEOUT', '0:0'))).toMatch(/time limit.*--time/);
    expect(describeSacct(record('OUT_OF_MEMORY', '0:125'))).toMatch(/memory limit.*--mem/);
    expect(describeSacct(record('FAILED', '0:9'))).toMatch(/killed by SIGKILL/);
    expect(describeSacct(record('FAILED', '3:0'))).toMatch(/exit status 3/);
    expect(describeSacct(record('CANCELLED by 1001', '0:0'))).toMatch(/cancelled by uid 1001/);
    expect(describeSacct(record('NODE_FAIL', '0:0'))).toMatch(/node .* failed/);
  });

  it("explains the worker's exit codes 2 and 3", () => {
    expect(describeSacct(record('FAILED', '2:0'))).toMatch(
      /exit status 2: the worker could not start/,
    );
    expect(describeSacct(record('FAILED', '3:0'))).toMatch(
      /exit status 3: the worker could not reach/,
    );
  });
});

describe('slurm backend (fake deployer)', () => {
  it('uploads a job file without directives and submits it with the options on the command line', async () => {
    const { deployer, commands, files } = fakeDeployer([
      CONFIG,
      HOME,
      [/^'?sbatch/, { stdout: '123\n' }],
    ]);
    const backend = slurm({ host: 'head', deployer, slurmOpts: ['--time=10', '-p debug'] });
    const submission = await backend.submit({ ...SPEC, indices: [2, 5, 7] });
    expect(submission).toMatchObject({ backend: 'slurm', jobId: '123', indices: [2, 5, 7] });
    const sbatch = commands.find((c) => c.includes('sbatch')) ?? '';
    expect(sbatch).toContain('--array=2,5,7');
    expect(sbatch).toContain('--parsable');
    expect(sbatch).toContain('--job-name=sheepdog-7');
    expect(sbatch).toContain(
      '-o /home/u/.sheepdog/%x.%A_%a.out -e /home/u/.sheepdog/%x.%A_%a.err -D /home/u/.sheepdog',
    );
    expect(sbatch).toMatch(/--time=10.* -p.* debug/);
    const [name, text] = [...files.entries()][0] ?? [];
    expect(sbatch).toContain(`/home/u/.sheepdog/${name}`);
    expect(text?.startsWith('#!/usr/bin/node\n')).toBe(true);
    expect(text).not.toMatch(/^(#SBATCH|\/\/\$)/m);
    expect(text).toContain('// Scheduler options (given on the command line');
    // Array task ids are the job indices: the worker needs no mapping.
    expect(text).not.toContain('"indices"');
  });

  it('asks again for the home folder and the limits after a dropped connection', async () => {
    const { deployer, commands } = fakeDeployer([CONFIG, HOME, [/sbatch/, { stdout: '9\n' }]]);
    const exec = deployer.exec.bind(deployer);
    let drops = 2;
    deployer.exec = async (command) => {
      if (drops > 0) {
        drops -= 1;
        commands.push(command);
        throw new Error('connection lost');
      }
      return exec(command);
    };
    const backend = slurm({ host: 'head', deployer });
    await expect(backend.submit({ ...SPEC, indices: [1] })).rejects.toThrow(/connection lost/);
    await expect(backend.submit({ ...SPEC, indices: [1] })).resolves.toMatchObject({ jobId: '9' });
  });

  it('refuses --array in slurmOpts', () => {
    const { deployer } = fakeDeployer([]);
    expect(() => slurm({ host: 'h', deployer, slurmOpts: ['--array=1-3'] })).toThrow(/--array/);
  });

  it('reports sbatch failures with stderr and what to do', async () => {
    const { deployer } = fakeDeployer([
      CONFIG,
      HOME,
      [
        /sbatch/,
        {
          code: 1,
          stderr: 'sbatch: error: Batch job submission failed: Resource temporarily unavailable\n',
        },
      ],
    ]);
    const backend = slurm({ host: 'head', deployer });
    await expect(backend.submit({ ...SPEC, indices: [1] })).rejects.toMatchObject({
      code: 'SUBMIT_FAILED',
      message: expect.stringMatching(/\[slurm\] sbatch failed on head.*MaxJobCount/),
    });
  });

  it('cancels the parts already accepted when a later sbatch fails', async () => {
    let n = 0;
    const { deployer, commands } = fakeDeployer([
      [/^scontrol show config$/, { stdout: 'MaxArraySize = 3\nMaxJobCount = 100\n' }],
      HOME,
      [/sbatch/, () => (++n === 1 ? { stdout: '50\n' } : { code: 1, stderr: 'boom' })],
    ]);
    const backend = slurm({ host: 'head', deployer });
    await expect(backend.submit({ ...SPEC, indices: [1, 2, 3, 4] })).rejects.toThrow(/boom/);
    expect(commands.at(-1)).toBe('scancel 50');
  });

  it('maps the array tasks of chunks above MaxArraySize back to job indices', async () => {
    let id = 60;
    const { deployer, files } = fakeDeployer([
      [/^scontrol show config$/, { stdout: 'MaxArraySize = 3\nMaxJobCount = 100\n' }],
      HOME,
      [/sbatch/, () => ({ stdout: `${id++}\n` })],
      [/^squeue/, { stdout: '60|2|RUNNING\n61|1|PENDING\n62|1|RUNNING\n62|2|RUNNING\n' }],
    ]);
    const backend = slurm({ host: 'head', deployer });
    const submission = await backend.submit({ ...SPEC, indices: [1, 2, 3, 4, 5, 6] });
    expect(submission.jobId).toBe('60,61,62');
    expect(submission.meta?.parts).toEqual([
      { jobId: '60' },
      { jobId: '61', offset: 2 },
      { jobId: '62', offset: 4 },
    ]);
    expect([...files.values()][1]).toContain('"indices":[3,4]');
    const { active } = await backend.status(submission);
    expect([...active].sort()).toEqual([2, 3, 5, 6]);
  });

  const submission: Submission = {
    backend: 'slurm',
    jobId: '40',
    indices: [2, 5, 7],
    submittedAt: Date.now(),
    meta: { parts: [{ jobId: '40' }] },
  };

  it('status: squeue tasks are active; an id slurmctld has forgotten means nothing is', async () => {
    const running = fakeDeployer([[/^squeue/, { stdout: '40|5|RUNNING\n40|7|PENDING\n' }]]);
    const a = await slurm({ host: 'h', deployer: running.deployer }).status(submission);
    expect([...a.active]).toEqual([5, 7]);
    expect(running.commands[0]).toBe("squeue -h -r -j 40 -o '%F|%K|%T'");
    const gone = fakeDeployer([
      [/^squeue/, { code: 1, stderr: 'slurm_load_jobs error: Invalid job id specified\n' }],
    ]);
    const b = await slurm({ host: 'h', deployer: gone.deployer }).status(submission);
    expect(b.active.size).toBe(0);
  });

  it('status: asks once more, then fails naming squeue, when slurmctld does not answer', async () => {
    const down = fakeDeployer([
      [
        /^squeue/,
        { code: 1, stderr: 'slurm_load_jobs error: Unable to contact slurm controller\n' },
      ],
    ]);
    await expect(slurm({ host: 'h', deployer: down.deployer }).status(submission)).rejects.toThrow(
      /\[slurm\] squeue failed on h.*Unable to contact/,
    );
    expect(down.commands).toHaveLength(2);
  });

  it('explain: waits for sacct to catch up, ignoring records that name no task', async () => {
    let calls = 0;
    const { deployer } = fakeDeployer([
      [
        /^sacct/,
        () =>
          ++calls === 1
            ? { stdout: '40|COMPLETED|0:0\n' }
            : { stdout: '40_2|COMPLETED|0:0\n40_5|FAILED|0:9\n40_7|TIMEOUT|0:0\n' },
      ],
    ]);
    const reasons = await slurm({ host: 'h', deployer, accountingWaitMs: 5000 }).explain?.(
      submission,
      [5, 7],
    );
    expect(calls).toBe(2);
    expect(reasons?.get(5)).toMatch(/SIGKILL/);
    expect(reasons?.get(7)).toMatch(/TIMEOUT/);
    expect(reasons?.has(2)).toBe(false);
  });

  it('explain: without accounting it explains nothing, at once', async () => {
    const { deployer } = fakeDeployer([
      [/^sacct/, { code: 1, stderr: 'Slurm accounting storage is disabled\n' }],
    ]);
    const reasons = await slurm({ host: 'h', deployer }).explain?.(submission, [5]);
    expect(reasons?.size).toBe(0);
  });

  it('cancel runs scancel on every part, and passes the cluster when sbatch named one', async () => {
    const { deployer, commands } = fakeDeployer([]);
    await slurm({ host: 'h', deployer }).cancel({
      ...submission,
      jobId: '40,41',
      meta: { parts: [{ jobId: '40' }, { jobId: '41', offset: 3 }], cluster: 'c1' },
    });
    expect(commands).toEqual(['scancel -M c1 40 41']);
  });
});

describe("config: backend 'slurm'", () => {
  it('resolves to the slurm backend, which needs a host', () => {
    expect(resolveBackend(parseConfig({ host: 'login', backend: 'slurm' })).name).toBe('slurm');
    expect(() => parseConfig({ backend: 'slurm' })).toThrow(/host: the slurm backend needs/);
  });

  it('keeps slurmOpts with the request, so a resume or retry submits with them', () => {
    const config = parseConfig({ host: 'login', backend: 'slurm', slurmOpts: ['--time=5'] });
    const stored = toStoredConfig(config, 'slurm', { port: 4000, localhost: 'me' });
    expect(stored.slurmOpts).toEqual(['--time=5']);
  });
});
