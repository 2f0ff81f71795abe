import { errorGuard, PartError } from '@sheepdog/protocol';

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
export class ServerError extends PartError<ServerErrorCode> {
  override readonly name = 'ServerError';
  readonly origin = 'server';
}

/** Whether `error` is a {@link ServerError} (with `code`, when given), by name and code. */
export const isServerError = errorGuard<ServerError, ServerErrorCode>(
  'ServerError',
  SERVER_ERROR_CODES,
);
