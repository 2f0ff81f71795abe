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
