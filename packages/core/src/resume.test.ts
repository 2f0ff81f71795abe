// Processes that die and others that pick up: the client is a real child process that calls
// mapAsync and is SIGKILLed; resume, serve, cancel and retry run in other processes. Local
// backend, real task processes (which outlive their client), real servers, one SQLite file.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequest, getServer } from '@sheepdog/server';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { look } from '../test/helpers.js';
import { fromStoredConfig, toStoredConfig } from './config.js';
import {
  cancel,
  getResults,
  map,
  mapAsync,
  parseConfig,
  resume,
  retry,
  type SheepdogConfig,
  type SheepdogError,
  serve,
} from './index.js';

const DIST = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href;
// Fast worker retries, so that tasks orphaned by a killed client find the next server soon.
const WORKER_ENV = { SHEEPDOG_HTTP_RETRY_BASE_MS: '200', SHEEPDOG_HTTP_RETRY_MAX_MS: '1000' };
const WAIT: SheepdogConfig = { lostGraceMs: 1000, pollIntervalMs: 200, retries: 2 };

let dir: string;
let counter = 0;
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-resume-'));
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function freshDb(): string {
  counter += 1;
  return join(dir, `db-${counter}.sqlite`);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A client process: mapAsync of `fn` (source text) over `args`; resolves with the request id. */
function client(
  fn: string,
  args: unknown[],
  config: SheepdogConfig,
): { child: ChildProcess; requestId: Promise<number> } {
  const script = `
    const { mapAsync } = await import(${JSON.stringify(DIST)});
    const id = await mapAsync(${fn}, ${JSON.stringify(args)}, ${JSON.stringify(config)});
    process.stdout.write(JSON.stringify({ id }) + '\\n');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ...WORKER_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const requestId = new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = /^(\{.*\})$/m.exec(out)?.[1];
      if (line) resolve((JSON.parse(line) as { id: number }).id);
    });
    child.on('exit', (code) => reject(new Error(`client exited (${code}) early: ${err}`)));
  });
  return { child, requestId };
}

async function until(what: string, test: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

const SLEEPY = 'async (i) => { await new Promise((r) => setTimeout(r, 1500)); return i * 10; }';

describe('the process serving a request dies', () => {
  it('killed mid-run: resume on the same port gets every result exactly once, nothing lost', async () => {
    const dbfile = freshDb();
    const port = await freePort();
    const args = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const { child, requestId } = client(SLEEPY, args, { dbfile, port, concurrency: 3 });
    const id = await requestId;
    // Kill it while the second wave of tasks runs: they outlive it and report to the next server.
    await until('the first results', () => look(dbfile, (s) => s.countResults(id)) >= 3);
    await until('the second wave', () => look(dbfile, (s) => s.countByState(id).running) >= 3);
    const orphans = look(dbfile, (s) =>
      s
        .getTaskStates(id)
        .filter((t) => t.state === 'running')
        .map((t) => t.jobIndex),
    );
    await kill(child);
    const results = await resume(id, dbfile, WAIT);
    expect(results).toEqual(args.map((i) => i * 10));
    look(dbfile, (s) => {
      expect(s.getResults(id)).toHaveLength(args.length);
      expect(s.getTaskStates(id).every((t) => t.state === 'done')).toBe(true);
      // The tasks running at the kill were not run again: their own results arrived late.
      const resubmitted = new Set(
        s
          .getJobs(id)
          .slice(1)
          .flatMap((j) => j.indices),
      );
      for (const index of orphans) expect(resubmitted.has(index)).toBe(false);
      // The tasks still queued in the dead client were resubmitted.
      expect(resubmitted.size).toBeGreaterThan(0);
      expect(s.getRequest(id).config).toMatchObject({ port, backend: 'local' });
      // The dead client's job folder (its job file holds the token) is gone too.
      const folder = s.getJobs(id)[0]?.meta?.dir;
      expect(typeof folder).toBe('string');
      expect(existsSync(folder as string)).toBe(false);
    });
  }, 90_000);

  it('killed right after mapAsync: another process resumes and collects every result', async () => {
    const dbfile = freshDb();
    const port = await freePort();
    const args = [1, 2, 3, 4, 5, 6];
    const { child, requestId } = client(SLEEPY, args, { dbfile, port, concurrency: 2 });
    const id = await requestId;
    await kill(child);
    const script = `
      const { resume } = await import(${JSON.stringify(DIST)});
      const results = await resume(${id}, ${JSON.stringify(dbfile)}, ${JSON.stringify(WAIT)});
      process.stdout.write(JSON.stringify(results));
    `;
    const other = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(other);
    let out = '';
    other.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const code = await new Promise((resolve) => other.once('exit', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual(args.map((i) => i * 10));
    expect(look(dbfile, (s) => s.getResults(id).length)).toBe(args.length);
  }, 90_000);

  it('serve picks up every unfinished request of the database, each on its own port', async () => {
    const dbfile = freshDb();
    const a = client(SLEEPY, [1, 2, 3], { dbfile, port: await freePort(), concurrency: 1 });
    const b = client(SLEEPY, [4, 5], { dbfile, port: await freePort(), concurrency: 1 });
    const ids = [await a.requestId, await b.requestId];
    await Promise.all([kill(a.child), kill(b.child)]);
    const reports = await serve({ dbfile, config: WAIT });
    const byId = (x: { requestId: number }, y: { requestId: number }): number =>
      x.requestId - y.requestId;
    expect(reports.sort(byId)).toEqual(
      ids.map((requestId) => ({ requestId, outcome: 'finished' })).sort(byId),
    );
    expect((await getResults(ids[0] as number, dbfile)).map(([, r]) => r)).toEqual([10, 20, 30]);
    expect((await getResults(ids[1] as number, dbfile)).map(([, r]) => r)).toEqual([40, 50]);
    // Nothing left to serve.
    expect(await serve({ dbfile })).toEqual([]);
  }, 90_000);
});

describe('cancel, retry and resume from another process', () => {
  it('cancel kills the tasks of a client that still runs; resume meanwhile finds its port taken', async () => {
    const dbfile = freshDb();
    const port = await freePort();
    const long = 'async (i) => { await new Promise((r) => setTimeout(r, 60000)); return i; }';
    const { child, requestId } = client(long, [1, 2, 3, 4], { dbfile, port, concurrency: 2 });
    const id = await requestId;
    await until('two running tasks', () => look(dbfile, (s) => s.countByState(id).running) === 2);
    await expect(resume(id, dbfile)).rejects.toMatchObject({ code: 'PORT_IN_USE' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    expect(await cancel(id, dbfile)).toBe(4);
    // With every task final and its task processes killed, the client has nothing left to do.
    await exited;
    expect(look(dbfile, (s) => s.getTaskStates(id).map((t) => [t.state, t.reason ?? '']))).toEqual(
      Array.from({ length: 4 }, () => ['cancelled', 'cancelled by the user']),
    );
  }, 60_000);

  it('retry resubmits lost tasks of a finished request and, with wait, serves them', async () => {
    const dbfile = freshDb();
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      // Task 2 dies on its first attempt (its marker file does not exist yet).
      const marker = join(dir, `marker-${counter}`);
      const dies = (i: number): number => {
        const fs = require('node:fs');
        if (i === 2 && !fs.existsSync(MARKER)) {
          fs.writeFileSync(MARKER, '');
          process.kill(process.pid, 'SIGKILL');
        }
        return i;
      };
      const config = { dbfile, lostGraceMs: 300, pollIntervalMs: 100 };
      expect(await map(dies, [1, 2, 3], config, { MARKER: marker })).toEqual([1, null, 3]);
    } finally {
      stderr.mockRestore();
    }
    const id = look(dbfile, (s) => s.listRequests().at(-1)?.id as number);
    expect(await retry(id, dbfile, undefined, { wait: true })).toEqual([2]);
    expect((await getResults(id, dbfile)).map(([, r]) => r)).toEqual([1, 2, 3]);
    expect(await retry(id, dbfile)).toEqual([]);
  }, 60_000);

  it('resume in the process that called mapAsync waits for it; a finished request resolves at once', async () => {
    const dbfile = freshDb();
    const id = await mapAsync((x: number) => x + 1, [1, 2], { dbfile });
    expect(await resume(id, dbfile)).toEqual([2, 3]);
    expect(await resume(id, dbfile, WAIT)).toEqual([2, 3]);
  }, 60_000);

  it('refuses unknown requests and requests stored without a port', async () => {
    const dbfile = freshDb();
    await expect(resume(42, dbfile)).rejects.toMatchObject({ code: 'UNKNOWN_REQUEST' });
    await expect(cancel(42, dbfile)).rejects.toMatchObject({ code: 'UNKNOWN_REQUEST' });
    const server = await getServer({ dbfile, hostname: '127.0.0.1' });
    const { requestId } = createRequest(server.storage, new Uint8Array([1]), new Uint8Array([1]), [
      new Uint8Array([1]),
    ]);
    await server.stop();
    const error = (await resume(requestId, dbfile).catch((e: unknown) => e)) as SheepdogError;
    expect(error.code).toBe('NOT_RESUMABLE');
    expect(error.message).toContain('getResults');
    await expect(retry(requestId, dbfile)).rejects.toMatchObject({ code: 'NOT_RESUMABLE' });
  }, 30_000);
});

// Given to the task in `ns`; declared here only so that `dies` type-checks.
const MARKER = '';

describe('what a request keeps of its config', () => {
  it('keeps the keys a later process needs, no secrets, and lets the caller override them', () => {
    const resolved = parseConfig({
      host: 'head',
      sshUser: 'me',
      sshKeyfile: '/home/me/.ssh/id_ed25519',
      geOpts: ['-l h_rt=1:00:00'],
      retries: 2,
      bindHost: '127.0.0.1',
      timeout: 1000,
      signal: new AbortController().signal,
      verbose: true,
      dbfile: '/tmp/x.sqlite',
    });
    const stored = toStoredConfig(resolved, 'gridengine', { port: 4000, localhost: 'me.example' });
    expect(stored).toEqual({
      backend: 'gridengine',
      port: 4000,
      localhost: 'me.example',
      host: 'head',
      sshUser: 'me',
      sshKeyfile: '/home/me/.ssh/id_ed25519',
      sshDir: '.sheepdog',
      geOpts: ['-l h_rt=1:00:00'],
      retries: 2,
      retryErrors: false,
      pollIntervalMs: 1000,
      lostGraceMs: 5000,
      bindHost: '127.0.0.1',
    });
    // JSON round trip, as the database keeps it; the caller's keys win.
    const merged = fromStoredConfig(JSON.parse(JSON.stringify(stored)), {
      sshKeyfile: '/elsewhere/key',
      retries: 0,
    });
    expect(merged).toMatchObject({
      backend: 'gridengine',
      host: 'head',
      sshKeyfile: '/elsewhere/key',
      retries: 0,
    });
    expect(merged).not.toHaveProperty('port');
    expect(merged).not.toHaveProperty('localhost');
    expect(fromStoredConfig({ ...stored, backend: 'my-own' }, undefined)).not.toHaveProperty(
      'backend',
    );
  });
});
