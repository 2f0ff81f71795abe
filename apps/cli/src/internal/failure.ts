import { describeError, originOf } from 'sheepdog';
import { CliError, isCliError } from '../errors.js';

// What a bare system error code means for someone running sheepdog, and what to try.
const HINTS: Readonly<Record<string, string>> = {
  ECONNREFUSED:
    'nothing accepted the connection: check the host and port (--host, --ssh-port, --port) and that the service runs there',
  ECONNRESET: 'the other side closed the connection: check that the host is up and try again',
  ENOTFOUND: 'the host name does not resolve: check --host, and --localhost if workers call back',
  EAI_AGAIN: 'the host name could not be resolved right now: check DNS and try again',
  ETIMEDOUT: 'the connection timed out: check the network path and firewalls to the host',
  EHOSTUNREACH: 'the host is unreachable: check the network path to it',
  EADDRINUSE: 'the port is already taken: pass another --port, or stop what listens there',
  EACCES: 'permission denied: check the permissions of the file or port',
  ENOENT: 'a file or directory does not exist: check the paths you gave',
};

function errnoCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in HINTS) return code;
  }
  return undefined;
}

/**
 * Wraps an error that ended a command in a {@link CliError} `RUN_FAILED` whose message says what
 * was being done, what went wrong and, for bare system errors, what to try.
 */
export function runFailed(what: string, error: unknown): CliError {
  if (isCliError(error)) return error;
  // Sheepdog's own errors already say what to do; a hint is for what came up bare from below.
  const code = originOf(error) === undefined ? errnoCode(error) : undefined;
  const hint = code === undefined ? '' : `\n  ${code}: ${HINTS[code]}`;
  return new CliError('RUN_FAILED', `${what}: ${describeError(error)}${hint}`, { cause: error });
}
