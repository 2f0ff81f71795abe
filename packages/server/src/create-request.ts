import type { NewRequestMeta, Storage } from '@sheepdog/storage';
import { hashToken, mintToken } from './internal/token.js';

/** A request stored by {@link createRequest}, with the token its workers must present. */
export interface CreatedRequest {
  /** The new request id. */
  requestId: number;
  /**
   * The worker token (32 random bytes, base64url). Only its SHA-256 is stored: keep the token
   * (it goes into the job file) because it cannot be recovered from the database.
   */
  token: string;
}

/**
 * Stores a request whose tasks workers may fetch over HTTP: mints a random token, stores its
 * SHA-256 hash with the request, and returns the token. Any server on the same dbfile, in this
 * process or a later one, accepts the token.
 *
 * @param storage - where to store the request
 * @param func - the serialised function
 * @param ns - the serialised namespace
 * @param argsList - one serialised argument list per task (job indexes 1..N in order)
 * @param meta - backend, label and config to keep with the request
 * @throws `StorageError` from `@sheepdog/storage` (`INVALID_ARGUMENT`, ...)
 */
export function createRequest(
  storage: Storage,
  func: Uint8Array,
  ns: Uint8Array,
  argsList: Iterable<Uint8Array>,
  meta: Omit<NewRequestMeta, 'tokenHash'> = {},
): CreatedRequest {
  const token = mintToken();
  const requestId = storage.newRequest(func, ns, argsList, {
    ...meta,
    tokenHash: hashToken(token),
  });
  return { requestId, token };
}

/**
 * Like {@link createRequest}, for arguments from an async iterable (or a sync one): they are
 * streamed into storage in chunks of a few thousand tasks (see `Storage.newRequestAsync`), so
 * at most one chunk of serialised arguments is in memory. Submit jobs once it has resolved.
 *
 * @throws `StorageError` from `@sheepdog/storage`, or whatever the iterable throws (nothing is
 *   then left stored)
 */
export async function createRequestAsync(
  storage: Storage,
  func: Uint8Array,
  ns: Uint8Array,
  argsList: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  meta: Omit<NewRequestMeta, 'tokenHash'> = {},
): Promise<CreatedRequest> {
  const token = mintToken();
  const requestId = await storage.newRequestAsync(func, ns, argsList, {
    ...meta,
    tokenHash: hashToken(token),
  });
  return { requestId, token };
}

/**
 * Mints another worker token for an existing request and stores its SHA-256 hash, for a process
 * that resubmits some of the request's tasks (a resume, a retry) without knowing the first token,
 * which the database does not keep. Workers holding earlier tokens keep working.
 *
 * @param storage - the storage holding the request
 * @param requestId - the request to add a token to
 * @returns the new token, to put in the new job file
 * @throws `StorageError` from `@sheepdog/storage` (`UNKNOWN_REQUEST`, `INVALID_ARGUMENT`, ...)
 */
export function addRequestToken(storage: Storage, requestId: number): string {
  const token = mintToken();
  storage.addTokenHash(requestId, hashToken(token));
  return token;
}
