/**
 * A request's scheduler submissions, kept so that a later process can resume, poll or retry it.
 * @module
 */
import type { JobRecord } from '../types.js';
import type { Connection } from './connection.js';

/** Scheduler submissions of requests. */
export class Jobs {
  readonly #c: Connection;

  constructor(connection: Connection) {
    this.#c = connection;
  }

  /** Stores one submission; returns its row id. */
  add(id: number, job: JobRecord): number {
    return this.#c.guard('addJob', () => {
      this.#c.requireRequest(id);
      return Number(
        this.#c.q.jobs.insertJob.run({
          requestId: id,
          backend: job.backend,
          jobId: job.jobId,
          submittedAt: job.submittedAt,
          indices: stringifyIndices(job.indices),
          meta: job.meta === undefined ? null : JSON.stringify(job.meta),
        }).lastInsertRowid,
      );
    });
  }

  /** The request's submissions, oldest first. */
  list(id: number): JobRecord[] {
    const rows = this.#c.guard('getJobs', () => {
      this.#c.requireRequest(id);
      return this.#c.q.jobs.getJobs.all({ id });
    });
    return rows.map((row) => ({
      backend: row.backend,
      jobId: row.jobId ?? '',
      submittedAt: row.submittedAt,
      indices: parseIndices(row.indices),
      ...(row.meta === null ? {} : { meta: JSON.parse(row.meta) as Record<string, unknown> }),
    }));
  }

  /** How many submissions the request has. */
  count(id: number): number {
    return this.#c.count('countJobs', this.#c.q.jobs.countJobs, id);
  }
}

/**
 * A submission's job indexes as JSON: `{"from":1,"to":N}` for the usual 1..N (a million indexes
 * would otherwise be megabytes of text read on every look), else the array.
 */
function stringifyIndices(indices: readonly number[]): string {
  const n = indices.length;
  if (n > 1 && indices.every((index, i) => index === i + 1))
    return JSON.stringify({ from: 1, to: n });
  return JSON.stringify(indices);
}

function parseIndices(text: string): number[] {
  const parsed = JSON.parse(text) as number[] | { from: number; to: number };
  if (Array.isArray(parsed)) return parsed;
  return Array.from({ length: parsed.to - parsed.from + 1 }, (_, i) => parsed.from + i);
}
