/**
 * What went wrong, as a stable string; test it with {@link isServerError}, not the message.
 *
 * | code | when |
 * |---|---|
 * | `INVALID_OPTIONS` | `getServer` or `createApp` options are malformed (all problems listed together) |
 * | `PORT_IN_USE_OTHER_DB` | this process already runs a server on the port, for another dbfile |
 * | `PORT_IN_USE_OTHER_HOST` | this process already runs a server on the port, bound to another hostname |
 * | `PORT_IN_USE` | another program (or socket) already listens on the port |
 * | `LISTEN_FAILED` | the server could not listen for another reason (bad hostname, no permission) |
 */
export const SERVER_ERROR_CODES = [
  'INVALID_OPTIONS',
  'PORT_IN_USE_OTHER_DB',
  'PORT_IN_USE_OTHER_HOST',
  'PORT_IN_USE',
  'LISTEN_FAILED',
] as const;

/** One of {@link SERVER_ERROR_CODES}. */
export type ServerErrorCode = (typeof SERVER_ERROR_CODES)[number];

/** The one error class of `@sheepdog/server`; its message says what to do about it. */
export class ServerError extends Error {
  /** Stable reason for the failure; see {@link ServerErrorCode}. */
  readonly code: ServerErrorCode;
  /** Which part of Sheepdog raised it: printed as `[sheepdog] [server]` before the message. */
  readonly origin = 'server';

  /**
   * @param code - stable reason, see {@link ServerErrorCode}
   * @param message - what happened and what to do; without a prefix: printers add `[sheepdog] [server]`
   * @param options - `cause`: the underlying error, when wrapping one
   */
  constructor(code: ServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServerError';
    this.code = code;
  }
}

/**
 * Whether `error` is a {@link ServerError}, with `code` when one is given. It checks the name and
 * code rather than `instanceof`, so an error from another copy of the package counts too.
 */
export function isServerError(error: unknown, code?: ServerErrorCode): error is ServerError {
  if (!(error instanceof Error) || error.name !== 'ServerError') return false;
  const own = (error as { code?: unknown }).code;
  return code === undefined
    ? (SERVER_ERROR_CODES as readonly unknown[]).includes(own)
    : own === code;
}
