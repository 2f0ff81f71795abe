import { type RequestSummary, Storage } from '@sheepdog/storage';
import { parseStoredConfig } from './config.js';
import { openExisting } from './map.js';
import { retryCandidates } from './rules.js';

/**
 * Every request in a database file, oldest first, with how many of its tasks are in each state.
 * A file that does not exist yet is created, empty.
 */
export async function listRequests(dbfile: string): Promise<RequestSummary[]> {
  const storage = new Storage(dbfile);
  try {
    return storage.listRequests();
  } finally {
    storage.close();
  }
}

/**
 * The requests of a database file that still have tasks pending or running, oldest first:
 * those a `serve` picks up.
 *
 * @param port - only the requests whose workers report to this port
 */
export async function unfinishedRequests(dbfile: string, port?: number): Promise<RequestSummary[]> {
  return (await listRequests(dbfile))
    .filter((r) => r.states.pending + r.states.running > 0)
    .filter((r) => port === undefined || parseStoredConfig(r.config)?.port === port);
}

/**
 * One request, with how many of its tasks are in each state.
 *
 * @throws SheepdogError `UNKNOWN_REQUEST`
 */
export async function requestSummary(requestId: number, dbfile: string): Promise<RequestSummary> {
  const storage = openExisting(requestId, dbfile);
  try {
    return storage.getRequest(requestId);
  } finally {
    storage.close();
  }
}

/**
 * The lost (and, with `retryErrors`, failed) tasks of a request that whoever serves it submits
 * again, by the `retries` it was stored with: the library's retry rule, read from the database.
 *
 * @returns their job indices, ascending
 * @throws SheepdogError `UNKNOWN_REQUEST`
 */
export async function retriesDue(requestId: number, dbfile: string): Promise<number[]> {
  const storage = openExisting(requestId, dbfile);
  try {
    const stored = parseStoredConfig(storage.getRequest(requestId).config);
    if (stored === undefined) return [];
    return retryCandidates(storage, requestId, {
      retries: stored.retries ?? 0,
      retryErrors: stored.retryErrors ?? false,
    });
  } finally {
    storage.close();
  }
}
