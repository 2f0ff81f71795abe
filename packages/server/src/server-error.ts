/**
 * What went wrong, as a stable string; check `error.code`, not the message.
 *
 * | code | when |
 * |---|---|
 * | `INVALID_OPTIONS` | `getServer` or `createApp` options are malformed (all problems listed together) |
 * | `PORT_IN_USE_OTHER_DB` | this process already runs a server on the port, for another dbfile |
 * | `PORT_IN_USE_OTHER_HOST` | this process already runs a server on the port, bound to another hostname |
 * | `PORT_IN_USE` | another program (or socket) already listens on the port |
 * | `LISTEN_FAILED` | the server could not listen for another reason (bad hostname, no permission) |
 */
export type ServerErrorCode =
  | 'INVALID_OPTIONS'
  | 'PORT_IN_USE_OTHER_DB'
  | 'PORT_IN_USE_OTHER_HOST'
  | 'PORT_IN_USE'
  | 'LISTEN_FAILED';

/** The one error class of `@sheepdog/server`; its message says what to do about it. */
export class ServerError extends Error {
  /** Stable reason for the failure; see {@link ServerErrorCode}. */
  readonly code: ServerErrorCode;

  /**
   * @param code - stable reason, see {@link ServerErrorCode}
   * @param message - what happened and what to do; the `[sheepdog] [server] ` prefix is added
   * @param options - `cause`: the underlying error, when wrapping one
   */
  constructor(code: ServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[sheepdog] [server] ${message}`, options);
    this.name = 'ServerError';
    this.code = code;
  }
}
