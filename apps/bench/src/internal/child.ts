// Cases that must not share this process (peak RSS per case, a load generator with its own event
// loop) run in forked children; a child answers each message with one reply.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

type Reply = { ok: true; value: unknown } | { ok: false; error: string };

/** A forked child that answers messages one at a time. */
export interface Child {
  /** Sends `input` and resolves with the child's answer; rejects if it fails or dies. */
  call<T>(input: unknown, timeoutMs?: number): Promise<T>;
  /** Disconnects; the child exits once idle. */
  close(): Promise<void>;
}

/**
 * Forks `script` (a module that calls {@link serveParent}) with a clean `execArgv`, so a child
 * never inherits a loader or inspector flag of the bench process.
 */
export function startChild(script: URL): Child {
  const child: ChildProcess = fork(fileURLToPath(script), [], {
    execArgv: [],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let busy = false;
  return {
    call<T>(input: unknown, timeoutMs = 600_000): Promise<T> {
      if (busy) return Promise.reject(new Error('bench child: one call at a time'));
      busy = true;
      return new Promise<T>((resolve, reject) => {
        const done = (): void => {
          busy = false;
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onExit);
        };
        const onMessage = (reply: Reply): void => {
          done();
          if (reply.ok) resolve(reply.value as T);
          else reject(new Error(`bench child ${script.pathname}: ${reply.error}`));
        };
        const onExit = (code: number | null, signal: string | null): void => {
          done();
          reject(
            new Error(
              `bench child ${script.pathname} exited (code ${code}, signal ${signal}) without answering`,
            ),
          );
        };
        const timer = setTimeout(() => {
          done();
          child.kill('SIGKILL');
          reject(new Error(`bench child ${script.pathname} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        child.on('message', onMessage);
        child.once('exit', onExit);
        child.send(input as object);
      });
    },
    async close(): Promise<void> {
      if (child.connected) child.disconnect();
      await exited;
    },
  };
}

/** Forks `script`, asks it one thing, and waits for it to exit. */
export async function runChild<T>(script: URL, input: unknown, timeoutMs?: number): Promise<T> {
  const child = startChild(script);
  try {
    return await child.call<T>(input, timeoutMs);
  } finally {
    await child.close();
  }
}

/** The child side: answers each message from the parent with `handle`'s result or error. */
export function serveParent(handle: (input: never) => Promise<unknown> | unknown): void {
  process.on('message', (input) => {
    Promise.resolve()
      .then(() => handle(input as never))
      .then(
        (value): Reply => ({ ok: true, value }),
        (error: unknown): Reply => ({
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        }),
      )
      .then((reply) => process.send?.(reply));
  });
  // The parent is gone or done with us: nothing more will come.
  process.once('disconnect', () => process.exit(0));
}
