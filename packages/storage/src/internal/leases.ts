/**
 * Leases, the hot path of lease mode: a worker takes a chunk of tasks at a time (pending ones
 * and running ones whose lease ran out), renews the leases while it runs them, and a worker
 * that found nothing waits until the earliest lease runs out.
 * @module
 */
import type Database from 'better-sqlite3';
import type { LeasedTask, LeaseOptions } from '../types.js';
import { toBytes } from './bytes.js';
import type { Connection } from './connection.js';

/** Handing out, renewing and timing task leases. */
export class Leases {
  readonly #c: Connection;
  readonly #q: Connection['q']['leases'];
  readonly #lease: Database.Transaction<(id: number, options: LeaseOptions) => LeasedTask[]>;

  constructor(connection: Connection) {
    this.#c = connection;
    const q = connection.q.leases;
    this.#q = q;
    const { markLost } = connection.q.taskState;
    this.#lease = connection.db.transaction((id: number, options: LeaseOptions): LeasedTask[] => {
      const now = Date.now();
      const { max, leaseMs, maxAttempts } = options;
      const pending = q.leasePending.all({ id, max });
      const expired = q.leaseExpired.all({ id, now, max });
      if (pending.length === 0 && expired.length === 0) connection.requireRequest(id);
      // Both lists come sorted by job index: merge them, so the lowest indexes go out first.
      const leased: LeasedTask[] = [];
      const until = now + leaseMs;
      let p = 0;
      let e = 0;
      while (leased.length < max && (p < pending.length || e < expired.length)) {
        const a = pending[p];
        const b = expired[e];
        let row: [number, Buffer, number];
        if (b === undefined || (a !== undefined && a[0] < b[0])) {
          row = a as [number, Buffer, number];
          p += 1;
        } else {
          row = b;
          e += 1;
        }
        const [jobIndex, args, attempts] = row;
        if (maxAttempts !== undefined && attempts >= maxAttempts) {
          markLost.run({
            requestId: id,
            jobIndex,
            now,
            reason: `its lease ran out without a result ${attempts} time${attempts === 1 ? '' : 's'}, and no retries are left: the worker holding it died or was killed, or the task runs longer than the lease`,
          });
          continue;
        }
        leased.push({ jobIndex, args: toBytes(args) });
      }
      if (leased.length > 0) {
        const indices = JSON.stringify(leased.map((task) => task.jobIndex));
        q.markLeased.run({ id, now, until, indices });
      }
      return leased;
    });
  }

  /** Up to `max` tasks, lowest job indexes first, each `running` under a new lease. */
  lease(id: number, options: LeaseOptions): LeasedTask[] {
    return this.#c.guard('leaseTasks', () => this.#lease.immediate(id, options));
  }

  /** Extends the leases of those `indices` still running under one; returns them, ascending. */
  renew(id: number, indices: readonly number[], leaseMs: number): number[] {
    return this.#c.guard('renewLeases', () => {
      const now = Date.now();
      const renewed = this.#q.renewLeases.all({
        id,
        now,
        until: now + leaseMs,
        indices: JSON.stringify(indices),
      });
      if (renewed.length === 0) this.#c.requireRequest(id);
      return renewed.sort((a, b) => a - b);
    });
  }

  /** When the earliest running lease runs out (ms since the epoch), `null` when none is out. */
  nextExpiry(id: number): number | null {
    return this.#c.guard('nextLeaseExpiry', () => {
      const until = this.#q.nextLeaseExpiry.get({ id }) ?? null;
      if (until === null) this.#c.requireRequest(id);
      return until;
    });
  }
}
