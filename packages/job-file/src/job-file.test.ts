import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  formatOption,
  gridEngineOptions,
  type JobFileOptions,
  jobFile,
  workerBundle,
} from './index.js';

const base: JobFileOptions = {
  url: 'http://head.example.org:8080/',
  token: 'T0KEN',
  requestId: 7,
  nArgs: 3,
};

/** The `main({...})` argument of a rendered file. */
function mainCall(text: string): Record<string, unknown> {
  const last = text.trimEnd().split('\n').at(-1) ?? '';
  const match = /^SheepdogWorker\.main\((.*)\);$/.exec(last);
  if (!match?.[1]) throw new Error(`no main call on the last line: ${last}`);
  return JSON.parse(match[1]) as Record<string, unknown>;
}

/** What Grid Engine makes of a directive line: its string_list() split, then sge_strip_quotes(). */
function gridEngineTokens(line: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /[ \t]/.test(line[i] ?? '')) i++;
    if (i >= line.length) break;
    let token = '';
    let quote: string | undefined;
    while (i < line.length && (quote !== undefined || !/[ \t]/.test(line[i] ?? ''))) {
      const c = line[i] ?? '';
      if (quote === undefined && (c === '"' || c === "'")) quote = c;
      else if (c === quote) quote = undefined;
      token += c;
      i++;
    }
    tokens.push(token.replace(/["']/g, ''));
  }
  return tokens;
}

describe('jobFile layout', () => {
  it('writes the shebang, Grid Engine directives, the secret note, the bundle and the call', () => {
    const text = jobFile({ ...base, options: ['-l h_rt=1:00:00', ['-o', '/home/me/out']] });
    const lines = text.split('\n');
    expect(lines.slice(0, 7)).toEqual([
      '#!/usr/bin/node',
      '//$ -S /usr/bin/node',
      '//$ -t 1-3',
      '//$ -l h_rt=1:00:00',
      '//$ -o /home/me/out',
      '// Sheepdog request 7, 3 tasks.',
      "// This file holds the request's secret token: keep it private (owner-only, mode 0600).",
    ]);
    expect(text).toContain(workerBundle());
    expect(mainCall(text)).toEqual({ url: base.url, token: 'T0KEN', requestId: 7 });
    expect(
      text.endsWith(
        'SheepdogWorker.main({"url":"http://head.example.org:8080/","token":"T0KEN","requestId":7});\n',
      ),
    ).toBe(true);
  });

  it('uses the array range 1..indices.length and embeds the indices', () => {
    const text = jobFile({
      ...base,
      nArgs: undefined,
      indices: [4, 8, 15],
      name: 'retry-7',
      maxHeapMb: 512,
      httpRetries: 5,
    });
    expect(text).toContain('\n//$ -t 1-3\n//$ -N retry-7\n');
    expect(mainCall(text)).toEqual({
      url: base.url,
      token: 'T0KEN',
      requestId: 7,
      indices: [4, 8, 15],
      maxHeapMb: 512,
      httpRetries: 5,
    });
  });

  it('writes no directives without a prefix, listing the options in a plain comment', () => {
    const text = jobFile({
      ...base,
      directivePrefix: null,
      options: ['--mem=2G', ['--output', 'my dir/%A_%a.out']],
    });
    expect(text).not.toContain('//$');
    expect(text).not.toContain('-t 1-3');
    expect(text.split('\n').slice(0, 4)).toEqual([
      '#!/usr/bin/node',
      '// Scheduler options (given on the command line, not read from this file):',
      '//   --mem=2G',
      '//   --output "my dir/%A_%a.out"',
    ]);
    expect(jobFile({ ...base, directivePrefix: null }).split('\n')[1]).toBe(
      '// Sheepdog request 7, 3 tasks.',
    );
  });

  it('accepts another comment prefix and refuses one that is not a JavaScript comment', () => {
    expect(jobFile({ ...base, directivePrefix: '//#' })).toContain('\n//# -t 1-3\n');
    expect(() => jobFile({ ...base, directivePrefix: '#$' })).toThrow(
      expect.objectContaining({
        code: 'BAD_OPTIONS',
        message: expect.stringContaining('not valid JavaScript'),
      }),
    );
  });

  it('puts the token in exactly one place: the main() call', () => {
    const token = 'tok"en\\with</script>*/quotes\'';
    const text = jobFile({ ...base, token });
    expect(text.split(JSON.stringify(token).slice(1, -1)).length - 1).toBe(1);
    expect(mainCall(text).token).toBe(token);
    const lastLine = text.trimEnd().split('\n').at(-1) ?? '';
    expect(lastLine.startsWith('SheepdogWorker.main(')).toBe(true);
    expect(text.indexOf('T0KEN')).toBe(-1);
  });

  it('refuses a token that cannot be an HTTP header value', () => {
    for (const token of ['', 'with space', 'line\nbreak', 'non-ascii-é']) {
      expect(() => jobFile({ ...base, token })).toThrow(
        expect.objectContaining({ code: 'BAD_OPTIONS', message: expect.stringContaining('token') }),
      );
    }
  });

  it('reads the bundle once', () => {
    expect(workerBundle()).toBe(workerBundle());
    const path = createRequire(import.meta.url).resolve('@sheepdog/worker/bundle');
    expect(workerBundle()).toBe(readFileSync(path, 'utf8'));
  });
});

describe('escaping', () => {
  it('quotes option values with blanks so Grid Engine reads them back whole', () => {
    const option = ['-o', '/home/me/my results/', '-e', '', '-v', 'A=1'];
    const line = formatOption(option);
    expect(line).toBe('-o "/home/me/my results/" -e "" -v A=1');
    expect(gridEngineTokens(line)).toEqual(option);
    const text = jobFile({
      ...base,
      shell: '/opt/node-20/bin/node',
      name: 'résumé',
      options: [option],
    });
    for (const directive of text.split('\n').filter((l) => l.startsWith('//$ '))) {
      expect(gridEngineTokens(directive.slice(4)).length).toBeGreaterThan(1);
    }
    expect(text).toContain('\n//$ -S /opt/node-20/bin/node\n');
    expect(text).toContain('\n//$ -N résumé\n');
  });

  it('refuses option values with quote characters, which Grid Engine would delete', () => {
    expect(() => formatOption(['-o', "/home/me/it's here"])).toThrow(
      expect.objectContaining({
        code: 'UNREPRESENTABLE_OPTION',
        message: expect.stringContaining('qsub command line'),
      }),
    );
    expect(() => jobFile({ ...base, name: 'my "job"' })).toThrow(
      expect.objectContaining({ code: 'UNREPRESENTABLE_OPTION' }),
    );
  });

  it('writes ready-made lines as given', () => {
    expect(formatOption(`-o '$HOME/.sheepdog/out/$JOB_NAME.$JOB_ID.$TASK_ID.log'`)).toBe(
      `-o '$HOME/.sheepdog/out/$JOB_NAME.$JOB_ID.$TASK_ID.log'`,
    );
  });

  it('refuses any line break that would turn the rest of an option into code', () => {
    for (const injected of [
      '-N x\nprocess.exit(9)',
      '-N x\rprocess.exit(9)',
      '-N x\u2028process.exit(9)',
    ]) {
      expect(() => jobFile({ ...base, options: [injected] })).toThrow(
        expect.objectContaining({
          code: 'BAD_OPTIONS',
          message: expect.stringContaining('line break'),
        }),
      );
      expect(() => jobFile({ ...base, options: [['-N', injected]] })).toThrow(
        expect.objectContaining({ code: 'BAD_OPTIONS' }),
      );
    }
    expect(() => jobFile({ ...base, name: 'a\nb' })).toThrow(
      expect.objectContaining({ code: 'BAD_OPTIONS' }),
    );
  });

  it('embeds values with blanks, quotes, backslashes and line separators as exact JSON', () => {
    const url = 'http://head:8080/sheep dog/it\'s "here"\\/\u2028/';
    const text = jobFile({ ...base, url });
    expect(text).not.toMatch(/[\u2028\u2029]/);
    expect(mainCall(text).url).toBe(url);
  });
});

describe('validation', () => {
  const cases: [string, Partial<JobFileOptions>, string][] = [
    ['no task count', { nArgs: undefined }, 'exactly one of nArgs'],
    ['both counts', { indices: [1] }, 'exactly one of nArgs'],
    ['zero tasks', { nArgs: 0 }, 'nArgs must be a positive integer'],
    ['bad indices', { nArgs: undefined, indices: [1, 0] }, 'indices must be'],
    ['empty indices', { nArgs: undefined, indices: [] }, 'indices must be'],
    ['not a URL', { url: 'head:8080' }, 'url must be an http'],
    ['empty token', { token: '' }, 'token must be'],
    ['bad request id', { requestId: 1.5 }, 'requestId must be'],
    ['relative shell', { shell: 'node' }, 'shell must be an absolute path'],
    ['shell with a blank', { shell: '/opt/my node/bin/node' }, 'shell must be an absolute path'],
    ['an array range option', { options: ['-t 1-10'] }, 'the option -t is set by the job file'],
    ['a shell option', { options: [['-S', '/bin/sh']] }, 'the option -S is set by the job file'],
    ['bad heap', { maxHeapMb: -1 }, 'maxHeapMb must be'],
    ['bad retries', { httpRetries: 1.5 }, 'httpRetries must be'],
  ];
  for (const [what, change, message] of cases) {
    it(`refuses ${what}`, () => {
      expect(() => jobFile({ ...base, ...change })).toThrow(
        expect.objectContaining({ code: 'BAD_OPTIONS', message: expect.stringContaining(message) }),
      );
    });
  }

  it('lists the Grid Engine options it adds', () => {
    expect(gridEngineOptions({ shell: '/usr/bin/node', tasks: 5, name: 'n' })).toEqual([
      ['-S', '/usr/bin/node'],
      ['-t', '1-5'],
      ['-N', 'n'],
    ]);
  });
});

describe('node runs the rendered file', () => {
  let server: Server;
  let url: string;
  const results = new Map<string, unknown>();
  const errors = new Map<string, string>();
  const token = 'tok"with\'quotes\\and/slashes=';
  let dir: string;

  beforeAll(async () => {
    // The wire protocol and payload formats exactly as the contracts describe them.
    const payloads = {
      func: serialize({
        kind: 'source',
        source: '(a, b) => ({ sum: a + b, big: BigInt(a) ** 40n, at: new Date(0) })',
        name: '',
        isAsync: false,
      }),
      ns: serialize({ values: {}, functions: {} }),
      args: serialize([2, 3]),
    };
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const answer = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${token}`)
        return answer(401, { error: { code: 'UNAUTHORIZED', message: 'no' } });
      const match = /^\/v1\/requests\/9\/tasks\/(\d+)(\/result|\/error)?$/.exec(req.url ?? '');
      if (!match?.[1]) return answer(404, { error: { code: 'UNKNOWN_TASK', message: req.url } });
      if (req.method === 'GET') {
        return answer(200, {
          func: payloads.func.toString('base64'),
          ns: payloads.ns.toString('base64'),
          args: payloads.args.toString('base64'),
        });
      }
      if (match[2] === '/result') results.set(match[1], deserialize(Buffer.concat(chunks)));
      else errors.set(match[1], Buffer.concat(chunks).toString('utf8'));
      answer(200, { ok: true, duplicate: false });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    dir = join(
      mkdtempSync(join(tmpdir(), 'sheepdog-job-file-')),
      `a dir with "quotes" and 'spaces'`,
    );
    mkdirSync(dir);
  });

  afterAll(async () => {
    server.closeAllConnections();
    server.close();
  });

  function write(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  }

  function node(
    args: string[],
    env: Record<string, string> = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, args, {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  }

  it('passes node --check', async () => {
    const path = write(
      'sheepdog-9.cjs',
      jobFile({ url, token, requestId: 9, nArgs: 2, shell: process.execPath }),
    );
    expect((await node(['--check', path])).code).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('runs task SHEEPDOG_TASK_ID against the server, and the result arrives', async () => {
    const text = jobFile({
      url,
      token,
      requestId: 9,
      nArgs: 2,
      shell: process.execPath,
      options: [['-o', '/home/me/sheepdog out'], '-j y'],
      name: 'sheepdog-9',
    });
    const ran = await node([write('sheepdog-9.cjs', text)], { SHEEPDOG_TASK_ID: '2' });
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    expect(results.get('2')).toEqual({ sum: 5, big: 2n ** 40n, at: new Date(0) });
    expect(ran.stdout).toContain('[sheepdog] request 9 task 2 result:');
  });

  it('runs array task k as indices[k - 1], without directives, with a heap cap', async () => {
    const text = jobFile({
      url,
      token,
      requestId: 9,
      indices: [5, 6],
      shell: process.execPath,
      directivePrefix: null,
      maxHeapMb: 128,
    });
    const ran = await node([write('sheepdog-9-retry.cjs', text)], { SLURM_ARRAY_TASK_ID: '2' });
    expect(ran.code).toBe(0);
    expect(results.get('6')).toEqual({ sum: 5, big: 2n ** 40n, at: new Date(0) });
  });

  it('exits non-zero without a task id', async () => {
    const ran = await node([write('no-id.cjs', jobFile({ url, token, requestId: 9, nArgs: 1 }))]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain('no task id');
  });
});

describe('lease mode', () => {
  it('runs nArgs workers that lease, with the settings passed to main()', () => {
    const text = jobFile({
      url: 'http://head:8080/',
      token: 'tok',
      requestId: 3,
      nArgs: 4,
      lease: { leaseMs: 2000, maxChunk: 50 },
    });
    expect(text).toContain('//$ -t 1-4');
    expect(text).toContain('4 lease-mode workers');
    expect(text).toContain('"lease":{"leaseMs":2000,"maxChunk":50}');
  });

  it('refuses indices and bad settings', () => {
    const base = { url: 'http://head:8080/', token: 'tok', requestId: 3 };
    expect(() => jobFile({ ...base, indices: [1, 2], lease: {} })).toThrow(/nArgs/);
    expect(() => jobFile({ ...base, nArgs: 2, lease: { leaseMs: 0 } })).toThrow(/leaseMs/);
  });
});
