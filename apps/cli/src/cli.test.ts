// The real `sheepdog` command, driven as a subprocess on the local backend with temporary
// directories and database files, as a user runs it.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { listRequests } from 'sheepdog';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, sheepdog, TASKS } from './test/helpers.js';

let root: string;
let n = 0;

/** A fresh working directory holding tasks.mjs. */
function workdir(): string {
  n += 1;
  const dir = join(root, `w${n}`);
  mkdirSync(dir);
  copyFileSync(TASKS, join(dir, 'tasks.mjs'));
  return dir;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sheepdog-cli-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('sheepdog run', () => {
  it('maps an export over a JSON array, in argument order, tuples and lone arguments', async () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'args.json'), JSON.stringify([[2, 3], [4, 5], 6]));
    const r = await sheepdog(['run', './tasks.mjs#multiply', '--args', 'args.json'], { cwd });
    expect(r.stderr).toContain('request 1: 3 task(s) on local');
    expect(r.status).toBe(0);
    expect(jsonLines(r.stdout)).toEqual([
      { index: 1, status: 'done', result: 6 },
      { index: 2, status: 'done', result: 20 },
      { index: 3, status: 'done', result: { $number: 'NaN' } },
    ]);
    expect(existsSync(join(cwd, 'sheepdog.sqlite'))).toBe(true);
  }, 60_000);

  it('reads JSON lines and writes --out; without #export the default export runs', async () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'args.jsonl'), '1\n\n2\n3\n');
    const r = await sheepdog(['run', 'tasks.mjs', '--args', 'args.jsonl', '--out', 'out.jsonl'], {
      cwd,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(jsonLines(readFileSync(join(cwd, 'out.jsonl'), 'utf8')).map((l) => l.result)).toEqual([
      2, 4, 6,
    ]);
  }, 60_000);

  it('reads arguments from stdin, as JSON lines or as one JSON array', async () => {
    const cwd = workdir();
    const lines = await sheepdog(['run', './tasks.mjs#square', '--args', '-'], {
      cwd,
      input: '1\n2\n3\n',
    });
    expect(lines.status).toBe(0);
    expect(jsonLines(lines.stdout).map((l) => l.result)).toEqual([1, 4, 9]);
    const array = await sheepdog(['run', './tasks.mjs#square', '--args', '-'], {
      cwd,
      input: '[4, 5]',
    });
    expect(jsonLines(array.stdout).map((l) => l.result)).toEqual([16, 25]);
    const forced = await sheepdog(
      ['run', './tasks.mjs#echo', '--args', '-', '--args-format', 'jsonl'],
      { cwd, input: '[4, 5]\n' },
    );
    expect(jsonLines(forced.stdout).map((l) => l.result)).toEqual([[4, 5]]);
  }, 60_000);

  it('encodes values JSON cannot hold with $-tags, and decodes them in arguments', async () => {
    const cwd = workdir();
    const r = await sheepdog(['run', './tasks.mjs#unusual', '--args', '-'], { cwd, input: '[[]]' });
    expect(r.status).toBe(0);
    expect(jsonLines(r.stdout)[0]?.result).toEqual({
      nothing: { $undefined: true },
      big: { $bigint: '12345678901234567890' },
      map: { $map: [['k', { $set: [1, 2] }]] },
      nan: { $number: 'NaN' },
      when: { $date: '1970-01-01T00:00:00.000Z' },
      bytes: { $bytes: { type: 'Uint8Array', base64: 'AQID' } },
      tagLike: { $object: { $bigint: 'not a bigint' } },
    });
    const back = await sheepdog(
      ['run', './tasks.mjs#echo', '--args', '-', '--args-format', 'jsonl'],
      {
        cwd,
        input: '[{"$bigint":"7"},{"$undefined":true},{"$object":{"$set":1}}]\n',
      },
    );
    expect(jsonLines(back.stdout)[0]?.result).toEqual([
      { $bigint: '7' },
      { $undefined: true },
      { $object: { $set: 1 } },
    ]);
  }, 60_000);

  it('exits 1 when tasks fail, and errors shows their arguments and stacks', async () => {
    const cwd = workdir();
    const r = await sheepdog(['run', './tasks.mjs#failOnEven', '--args', '-'], {
      cwd,
      input: '[1, 2, 3, 4]',
    });
    expect(r.status).toBe(1);
    expect(jsonLines(r.stdout)).toEqual([
      { index: 1, status: 'done', result: 1 },
      { index: 2, status: 'failed', error: 'RangeError: even input: 2' },
      { index: 3, status: 'done', result: 3 },
      { index: 4, status: 'failed', error: 'RangeError: even input: 4' },
    ]);
    expect(r.stderr).toContain('sheepdog errors 1');
    const errors = await sheepdog(['errors', '1'], { cwd });
    expect(errors.status).toBe(0);
    expect(errors.stdout).toContain('task 2 failed (1 attempt), arguments [2]:');
    expect(errors.stdout).toMatch(
      /RangeError: even input: 4\n\s+at failOnEven \(file:\/\/.*tasks\.mjs/,
    );
    const json = jsonLines((await sheepdog(['errors', '1', '--json'], { cwd })).stdout);
    expect(json.map((e) => [e.index, e.status, e.args])).toEqual([
      [2, 'failed', [2]],
      [4, 'failed', [4]],
    ]);
    expect(String(json[0]?.error)).toMatch(/^RangeError: even input: 2\n\s+at /);
  }, 60_000);

  it('errors shows how a retried task ended: lost with its reason, the error of its first attempt gone', async () => {
    const cwd = workdir();
    const r = await sheepdog(
      [
        'run',
        './tasks.mjs#throwThenDie',
        '--args',
        '-',
        '--retries',
        '1',
        '--retry-errors',
        '--lost-grace',
        '200ms',
        '--poll-interval',
        '200ms',
      ],
      { cwd, input: JSON.stringify([[1, cwd]]) },
    );
    expect(r.status, r.stderr).toBe(1);
    expect(jsonLines(r.stdout)).toEqual([
      { index: 1, status: 'lost', reason: expect.stringContaining('SIGKILL') },
    ]);
    const [line, ...rest] = jsonLines((await sheepdog(['errors', '1', '--json'], { cwd })).stdout);
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ index: 1, status: 'lost', attempts: 2 });
    expect(String(line?.reason)).toContain('SIGKILL');
    expect(line).not.toHaveProperty('error');
  }, 60_000);

  it('exits 2 listing every problem of the command line, the arguments and the config', async () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'bad.jsonl'), '1\n{oops\n3\n[\n');
    const r = await sheepdog(
      ['run', './tasks.mjs#nope', '--args', 'bad.jsonl', '--port', '70000', '--timeout', 'soon'],
      { cwd, env: { SHEEPDOG_CONCURRENCY: 'many', SHEEPDOG_BACKEND: 'gridengine' } },
    );
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const problems = [
      'has no function exported as "nope"; its function exports: default, dieOnce, echo, failOnEven',
      'bad.jsonl:2: not JSON',
      'bad.jsonl:4: not JSON',
      'SHEEPDOG_CONCURRENCY: expected a whole number, got "many"',
      '--timeout: expected a duration such as 90s, 30m, 2h or a number of ms, got "soon"',
      'port: Too big',
      '(from --port)',
      "host: the gridengine backend needs the cluster's head node",
    ];
    for (const p of problems) expect(r.stderr).toContain(p);
    expect(r.stderr).toMatch(
      /^\[sheepdog\] \[cli\] cannot run \.\/tasks\.mjs#nope, fix these and try again:\n/,
    );
  }, 30_000);

  it('exits 2 for a missing module, a missing arguments file, a value export and an unknown flag', async () => {
    const cwd = workdir();
    const missing = await sheepdog(
      ['run', './gone.mjs#f', '--args', 'gone.json', '--out', 'nowhere/out.jsonl'],
      { cwd },
    );
    expect(missing.stderr).toContain('--out: the folder');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('./gone.mjs: no such file (looked at');
    expect(missing.stderr).toContain('--args: gone.json does not exist');
    const value = await sheepdog(['run', './tasks.mjs#notAFunction', '--args', '-'], {
      cwd,
      input: '[1]',
    });
    expect(value.status).toBe(2);
    expect(value.stderr).toContain('has no function exported as "notAFunction" (it is a number)');
    const noArgs = await sheepdog(['run', './tasks.mjs#square'], { cwd });
    expect(noArgs.status).toBe(2);
    expect(noArgs.stderr).toContain('--args: missing');
    const flag = await sheepdog(['run', './tasks.mjs#square', '--args', '-', '--bogus'], { cwd });
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain("unknown option '--bogus'");
  }, 30_000);

  it('cancels what is still open at --timeout and exits 1', async () => {
    const cwd = workdir();
    const r = await sheepdog(
      // The deadline is long enough for task 1 to finish on a slow machine; 2 and 3 never do.
      ['run', './tasks.mjs#slow', '--args', '-', '--timeout', '10s', '--concurrency', '1'],
      { cwd, input: '[[1, 0], [2, 60000], [3, 60000]]' },
    );
    expect(r.status).toBe(1);
    const lines = jsonLines(r.stdout);
    expect(lines[0]).toEqual({ index: 1, status: 'done', result: 1 });
    expect(lines.slice(1).map((l) => l.status)).toEqual(['cancelled', 'cancelled']);
    expect(String(lines[1]?.reason)).toContain('10000');
  }, 60_000);

  it('says what to do when the server port is taken', async () => {
    const cwd = workdir();
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '0.0.0.0', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await sheepdog(
        ['run', './tasks.mjs#square', '--args', '-', '--port', String(port)],
        {
          cwd,
          input: '[1]',
        },
      );
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('[sheepdog] [cli] could not start ./tasks.mjs#square: [server]');
      expect(r.stderr).toContain(`:${port}: another program uses the port; choose another port`);
    } finally {
      blocker.close();
    }
  }, 30_000);
});

describe('sheepdog status, results and errors', () => {
  let cwd: string;
  beforeAll(async () => {
    cwd = workdir();
    await sheepdog(['run', './tasks.mjs#square', '--args', '-', '--db', 'runs.sqlite'], {
      cwd,
      input: '[1,2]',
    });
    await sheepdog(['run', './tasks.mjs#failOnEven', '--args', '-', '--db', 'runs.sqlite'], {
      cwd,
      input: '[1,2,3]',
    });
  }, 60_000);

  it('prints a table of every request', async () => {
    const r = await sheepdog(['status', '--db', 'runs.sqlite'], { cwd });
    expect(r.status).toBe(0);
    const [header, first, second] = r.stdout.trimEnd().split('\n');
    expect(header?.split(/\s+/)).toEqual(
      'id created function backend tasks done failed lost running pending cancelled'.split(' '),
    );
    expect(first).toMatch(
      /^ *1 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\.\/tasks\.mjs#square +local +2 +2 +0 +0 +0 +0 +0$/,
    );
    expect(second).toMatch(/^ *2 .* \.\/tasks\.mjs#failOnEven +local +3 +2 +1 +0 +0 +0 +0$/);
  });

  it('prints JSON with --json, for all requests and for one', async () => {
    const all = JSON.parse(
      (await sheepdog(['status', '--json', '--db', 'runs.sqlite'], { cwd })).stdout,
    );
    expect(all).toHaveLength(2);
    expect(all[1]).toMatchObject({
      id: 2,
      backend: 'local',
      tasks: 3,
      done: 2,
      failed: 1,
      lost: 0,
    });
    expect(all[1].function).toMatch(/^file:\/\/.*tasks\.mjs#failOnEven$/);
    const one = JSON.parse(
      (await sheepdog(['status', '2', '--json', '--db', 'runs.sqlite'], { cwd })).stdout,
    );
    expect(one).toMatchObject({ id: 2, failed: 1 });
    expect(one.taskStates.map((t: { state: string }) => t.state)).toEqual([
      'done',
      'failed',
      'done',
    ]);
  });

  it('prints the results again, exiting as run did', async () => {
    const ok = await sheepdog(['results', '1', '--db', 'runs.sqlite'], { cwd });
    expect(ok.status).toBe(0);
    expect(jsonLines(ok.stdout).map((l) => l.result)).toEqual([1, 4]);
    const bad = await sheepdog(['results', '2', '--db', 'runs.sqlite'], { cwd });
    expect(bad.status).toBe(1);
    expect(jsonLines(bad.stdout).map((l) => l.status)).toEqual(['done', 'failed', 'done']);
  });

  it('explains an unknown request, a missing database and a bad id, exiting 2', async () => {
    const unknown = await sheepdog(['results', '9', '--db', 'runs.sqlite'], { cwd });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain(
      'there is no request 9 in runs.sqlite; `sheepdog status --db runs.sqlite` lists',
    );
    const nodb = await sheepdog(['status', '--db', 'nothing.sqlite'], { cwd });
    expect(nodb.status).toBe(2);
    expect(nodb.stderr).toContain('there is no database at nothing.sqlite; pass --db');
    expect(existsSync(join(cwd, 'nothing.sqlite'))).toBe(false);
    const badId = await sheepdog(['errors', 'abc', '--db', 'runs.sqlite'], { cwd });
    expect(badId.status).toBe(2);
    expect(badId.stderr).toContain('"abc" is not a request id');
    const empty = await sheepdog(['errors', '1', '--db', 'runs.sqlite'], { cwd });
    expect(empty.stdout).toContain('request 1: no task failed, was lost or was cancelled');
  });
});

describe('config: file, SHEEPDOG_* variables and flags', () => {
  async function requestsIn(file: string): Promise<number> {
    if (!existsSync(file)) return 0;
    return (await listRequests(file)).length;
  }

  it('takes flags over variables over the file; file paths are relative to the file', async () => {
    const cwd = workdir();
    mkdirSync(join(cwd, 'conf'));
    writeFileSync(
      join(cwd, 'sheepdog.config.json'),
      JSON.stringify({ dbfile: 'file.sqlite', concurrency: 1 }),
    );
    const run = (env: Record<string, string>, extra: string[] = []) =>
      sheepdog(['run', './tasks.mjs#square', '--args', '-', ...extra], { cwd, env, input: '[3]' });
    expect((await run({})).status).toBe(0);
    expect(await requestsIn(join(cwd, 'file.sqlite'))).toBe(1);
    expect((await run({ SHEEPDOG_DB: 'env.sqlite' })).status).toBe(0);
    expect(await requestsIn(join(cwd, 'env.sqlite'))).toBe(1);
    expect((await run({ SHEEPDOG_DB: 'env.sqlite' }, ['--db', 'flag.sqlite'])).status).toBe(0);
    expect(await requestsIn(join(cwd, 'flag.sqlite'))).toBe(1);
    expect(await requestsIn(join(cwd, 'env.sqlite'))).toBe(1);
    writeFileSync(join(cwd, 'conf', 'other.json'), JSON.stringify({ dbfile: 'there.sqlite' }));
    expect((await run({ SHEEPDOG_CONFIG: 'conf/other.json' })).status).toBe(0);
    expect(await requestsIn(join(cwd, 'conf', 'there.sqlite'))).toBe(1);
  }, 60_000);

  it('names the source of each bad value: file, variable or flag', async () => {
    const cwd = workdir();
    writeFileSync(
      join(cwd, 'sheepdog.config.json'),
      JSON.stringify({ port: 'eighty', hots: 'typo', sshPort: 22 }),
    );
    const r = await sheepdog(['run', './tasks.mjs#square', '--args', '-', '--ssh-port', '0'], {
      cwd,
      env: { SHEEPDOG_MAX_HEAP_MB: '-5' },
      input: '[1]',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/port: .*\(from sheepdog\.config\.json\)/);
    expect(r.stderr).toMatch(/\(config\): .*"hots".*\(from sheepdog\.config\.json\)/);
    expect(r.stderr).toMatch(/maxHeapMb: .*\(from SHEEPDOG_MAX_HEAP_MB\)/);
    expect(r.stderr).toMatch(/sshPort: .*\(from --ssh-port\)/);
  }, 30_000);

  it("loads sheepdog.config.js and, through the project's tsx, sheepdog.config.ts", async () => {
    const js = workdir();
    writeFileSync(join(js, 'sheepdog.config.js'), "export default { dbfile: 'js.sqlite' };\n");
    writeFileSync(join(js, 'package.json'), '{"type":"module"}\n');
    expect(
      (await sheepdog(['run', './tasks.mjs#square', '--args', '-'], { cwd: js, input: '[1]' }))
        .status,
    ).toBe(0);
    expect(await requestsIn(join(js, 'js.sqlite'))).toBe(1);

    const ts = workdir();
    writeFileSync(
      join(ts, 'sheepdog.config.ts'),
      "const dbfile: string = 'ts.sqlite';\nexport default { dbfile, concurrency: 1 satisfies number };\n",
    );
    const noTsx = await sheepdog(['status'], { cwd: ts });
    expect(noTsx.status).toBe(2);
    expect(noTsx.stderr).toContain('install tsx in your project (npm i -D tsx)');
    const tsx = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
    mkdirSync(join(ts, 'node_modules'));
    symlinkSync(realpathSync(tsx), join(ts, 'node_modules', 'tsx'));
    expect(
      (await sheepdog(['run', './tasks.mjs#square', '--args', '-'], { cwd: ts, input: '[1]' }))
        .status,
    ).toBe(0);
    expect(await requestsIn(join(ts, 'ts.sqlite'))).toBe(1);
  }, 60_000);
});
