/**
 * Codes carried by {@link DeployerError}. Test them with {@link isDeployerError}.
 *
 * | code | meaning |
 * |---|---|
 * | `INVALID_CONFIG` | an option or the SSH config file is unusable (message says which) |
 * | `CONNECT_FAILED` | TCP connect, ProxyCommand, jump host or SSH handshake failed or timed out |
 * | `HOST_KEY_UNKNOWN` | the server's host key is not in known_hosts (first contact) |
 * | `HOST_KEY_CHANGED` | known_hosts holds a different key of the same type for this host |
 * | `HOST_KEY_REVOKED` | the server's host key is marked `@revoked` in known_hosts |
 * | `AUTH_FAILED` | every authentication method (agent, keyfile, default keys) was refused |
 * | `CONNECTION_LOST` | the connection dropped while a command or transfer was running |
 * | `CHANNEL_FAILED` | the server refused to open a session or SFTP channel |
 * | `COMMAND_FAILED` | a remote command exited with a non-zero status |
 * | `COMMAND_NOT_FOUND` | the remote shell could not find the command (exit 127) |
 * | `COMMAND_TIMEOUT` | a remote command ran longer than its `timeoutMs` |
 * | `SFTP_FAILED` | an SFTP operation (mkdir, open, write, realpath) failed |
 * | `UNEXPECTED_OUTPUT` | a command succeeded but printed something we cannot parse (e.g. no job id) |
 */
export const DEPLOYER_ERROR_CODES = [
  'INVALID_CONFIG',
  'CONNECT_FAILED',
  'HOST_KEY_UNKNOWN',
  'HOST_KEY_CHANGED',
  'HOST_KEY_REVOKED',
  'AUTH_FAILED',
  'CONNECTION_LOST',
  'CHANNEL_FAILED',
  'COMMAND_FAILED',
  'COMMAND_NOT_FOUND',
  'COMMAND_TIMEOUT',
  'SFTP_FAILED',
  'UNEXPECTED_OUTPUT',
] as const;

/** One of {@link DEPLOYER_ERROR_CODES}. */
export type DeployerErrorCode = (typeof DEPLOYER_ERROR_CODES)[number];

/** Facts attached to a {@link DeployerError}, so callers need not parse the message. */
export interface DeployerErrorDetails {
  /** The underlying error, when this one wraps another. */
  cause?: unknown;
  /** `host:port` (or the ssh config alias) the error is about. */
  host?: string;
  /** The remote command line, for command errors. */
  command?: string;
  /** The remote exit status, for command errors (`-1` when there was none). */
  exitCode?: number;
  /** The signal that ended the remote command, when there was one. */
  signal?: string;
  /** Remote standard output, for command errors. */
  stdout?: string;
  /** Remote standard error, for command errors. */
  stderr?: string;
  /** SHA256 fingerprint of the server's host key, for host key errors. */
  fingerprint?: string;
}

/** The one error class of `@sheepdog/deployer`. */
export class DeployerError extends Error {
  /** What went wrong, from the table on {@link DeployerErrorCode}. */
  readonly code: DeployerErrorCode;
  /** Which part of Sheepdog raised it: printed as `[sheepdog] [deployer]` before the message. */
  readonly origin = 'deployer';
  /** `host:port` (or the ssh config alias) the error is about. */
  readonly host: string | undefined;
  /** The remote command line, for command errors. */
  readonly command: string | undefined;
  /** The remote exit status, for command errors (`-1` when there was none). */
  readonly exitCode: number | undefined;
  /** The signal that ended the remote command, when there was one. */
  readonly signal: string | undefined;
  /** Remote standard output, for command errors. */
  readonly stdout: string | undefined;
  /** Remote standard error, for command errors. */
  readonly stderr: string | undefined;
  /** SHA256 fingerprint of the server's host key, for host key errors. */
  readonly fingerprint: string | undefined;

  /**
   * @param code - what went wrong, from {@link DeployerErrorCode}
   * @param message - what happened and what to do; without a prefix: printers add `[sheepdog] [deployer]`
   * @param details - the cause and the facts behind the message
   */
  constructor(code: DeployerErrorCode, message: string, details: DeployerErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DeployerError';
    this.code = code;
    this.host = details.host;
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.stdout = details.stdout;
    this.stderr = details.stderr;
    this.fingerprint = details.fingerprint;
  }
}

/**
 * Whether `error` is a {@link DeployerError}, with `code` when one is given. It checks the name and
 * code rather than `instanceof`, so an error from another copy of the package counts too.
 */
export function isDeployerError(error: unknown, code?: DeployerErrorCode): error is DeployerError {
  if (!(error instanceof Error) || error.name !== 'DeployerError') return false;
  const own = (error as { code?: unknown }).code;
  return code === undefined
    ? (DEPLOYER_ERROR_CODES as readonly unknown[]).includes(own)
    : own === code;
}
