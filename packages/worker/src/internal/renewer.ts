import { Worker } from 'node:worker_threads';

// The renewing thread's code. It runs beside the tasks, on an event loop of its own: a task
// that computes synchronously for hours blocks the main thread's timers, not these.
const THREAD = `
const { workerData, parentPort } = require('node:worker_threads');
const client = require(workerData.https ? 'node:https' : 'node:http');
const agent = new client.Agent({ keepAlive: true, maxSockets: 1 });
let held = [];
parentPort.on('message', (indices) => { held = indices; });
setInterval(() => {
  if (held.length === 0) return;
  const body = JSON.stringify({ indices: held, leaseMs: workerData.leaseMs });
  const req = client.request(workerData.url, {
    method: 'POST',
    agent,
    timeout: workerData.timeoutMs,
    headers: {
      authorization: 'Bearer ' + workerData.token,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    },
  }, (res) => res.resume());
  // A renewal that fails is only a missed beat: the next one follows, and if none gets
  // through, the lease runs out and the server hands the tasks to another worker.
  req.on('error', () => {});
  req.on('timeout', () => req.destroy());
  req.end(body);
}, workerData.intervalMs);
`;

/** What a {@link LeaseRenewer} needs. */
export interface RenewerOptions {
  /** The request's `lease/renew` endpoint. */
  readonly url: URL;
  readonly token: string;
  readonly leaseMs: number;
  /** Per-call timeout of a renewal, in ms. */
  readonly timeoutMs: number;
}

/**
 * Keeps the leases of the tasks a lease-mode worker holds alive while they run: every third of
 * the lease, from its own thread, it tells the server which tasks it is still at.
 */
export class LeaseRenewer {
  readonly #thread: Worker;

  constructor(options: RenewerOptions) {
    this.#thread = new Worker(THREAD, {
      eval: true,
      workerData: {
        url: options.url.href,
        https: options.url.protocol === 'https:',
        token: options.token,
        leaseMs: options.leaseMs,
        intervalMs: Math.max(50, Math.floor(options.leaseMs / 3)),
        timeoutMs: options.timeoutMs,
      },
    });
    // The thread never keeps the process alive; the worker ends it when done.
    this.#thread.unref();
  }

  /** From now on, renews these tasks' leases (and no longer any others). */
  hold(indices: readonly number[]): void {
    this.#thread.postMessage(indices);
  }

  /** Ends the thread. */
  async stop(): Promise<void> {
    await this.#thread.terminate();
  }
}
