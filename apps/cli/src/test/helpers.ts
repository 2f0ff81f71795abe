import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built command the tests drive, exactly as users run it. */
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** The fixture module with the task functions. */
export const TASKS = fileURLToPath(new URL('./fixtures/tasks.mjs', import.meta.url));

/**
 * A database with two requests no command can pick up: request 1 was stored without a port
 * (made with the storage package alone), request 2 runs on the custom backend "mine" and its
 * task 1 failed. Copy it before use: commands write to it.
 */
export const UNSERVABLE_DB = fileURLToPath(new URL('./fixtures/unservable.db', import.meta.url));

/**
 * A database with two requests stored with `retries: 1`, each with its one task lost: request 1
 * by a lease-mode job that ran it twice (no retry left), request 2 by a job of one array task
 * per index that ran it once (one retry left). Copy it before use.
 */
export const RETRIES_DB = fileURLToPath(new URL('./fixtures/retries.db', import.meta.url));

/** What a finished `sheepdog` process left behind. */
export interface Finished {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link sheepdog}. */
export interface SpawnOptions {
  cwd: string;
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
}

/** The environment without any SHEEPDOG_* settings of the machine running the tests. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('SHEEPDOG_')) env[key] = value;
  }
  return { ...env, ...extra };
}

/** Runs `sheepdog <args>` as a subprocess and resolves when it exits. */
export function sheepdog(args: readonly string[], options: SpawnOptions): Promise<Finished> {
  return finished(start(args, options), options.timeoutMs);
}

/** Starts `sheepdog <args>` as a subprocess with piped stdio. */
export function start(args: readonly string[], options: SpawnOptions): ReturnType<typeof spawn> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin?.end(options.input ?? '');
  return child;
}

/** Collects a child's output until it exits; kills it after `timeoutMs`. */
export function finished(child: ReturnType<typeof spawn>, timeoutMs = 60_000): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `sheepdog did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** Parses JSON lines. */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Waits until `predicate` holds, checking every 100 ms. */
export async function until(predicate: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
