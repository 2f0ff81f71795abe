import { SheepdogError, type SheepdogErrorCode } from '../../errors.js';

/** What {@link backendError} may carry besides the message. */
export interface BackendErrorOptions {
  /**
   * `SUBMIT_FAILED` for what stops a submission, `INVALID_CONFIG` for a backend option it
   * refuses; the default is for a scheduler command that failed otherwise (status, cancel).
   * @default 'BACKEND_FAILED'
   */
  readonly code?: Extract<SheepdogErrorCode, 'BACKEND_FAILED' | 'SUBMIT_FAILED' | 'INVALID_CONFIG'>;
  /** The error this one wraps. */
  readonly cause?: unknown;
  /** The request the failed command was for. */
  readonly requestId?: number;
}

/**
 * The error a cluster backend throws, its message naming the backend: `[slurm] squeue failed on
 * head (exit 1): …`. Say in `message` what failed, where, and what to do about it.
 *
 * @param backend - the backend's name
 */
export function backendError(
  backend: string,
  message: string,
  options: BackendErrorOptions = {},
): SheepdogError {
  const { code = 'BACKEND_FAILED', ...rest } = options;
  return new SheepdogError(code, `[${backend}] ${message}`, rest);
}
