import { posix } from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import { DeployerError } from '../deployer-error.js';

type SftpError = Error & { code?: number };

/** SFTP status codes (draft-ietf-secsh-filexfer-02): SSH_FX_NO_SUCH_FILE, SSH_FX_PERMISSION_DENIED. */
const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;

/**
 * Turns a remote directory as users write it into an SFTP path: `~` and `~/x` become relative
 * paths, because an SFTP session (like a shell started by sshd) begins in the home directory.
 */
export function remotePath(directory: string): string {
  const trimmed = directory.trim();
  if (trimmed === '' || trimmed === '~') return '.';
  const relative = trimmed.startsWith('~/') ? trimmed.slice(2) : trimmed;
  return posix.normalize(relative === '' ? '.' : relative);
}

function sftpFailed(what: string, path: string, label: string, cause: SftpError): DeployerError {
  const hint =
    cause.code === SFTP_PERMISSION_DENIED
      ? ` ${label}'s user may not write there; choose a directory it owns.`
      : '';
  return new DeployerError(
    'SFTP_FAILED',
    `SFTP ${what} ${path} on ${label} failed: ${cause.message}.${hint}`,
    {
      host: label,
      cause,
    },
  );
}

function stat(sftp: SFTPWrapper, path: string): Promise<Stats | undefined> {
  return new Promise((resolve, reject) => {
    sftp.stat(path, (cause, stats) => {
      if (cause) {
        if ((cause as SftpError).code === SFTP_NO_SUCH_FILE) resolve(undefined);
        else reject(cause);
      } else resolve(stats);
    });
  });
}

function call(run: (done: (cause: Error | null | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    run((cause) => (cause ? reject(cause) : resolve()));
  });
}

/**
 * Creates `dir` and any missing parents with mode 0700 (`mkdir -p -m 700`, but for every level
 * it creates). Existing directories keep their mode.
 */
export async function ensureDirectory(
  sftp: SFTPWrapper,
  dir: string,
  label: string,
): Promise<void> {
  const existing = await stat(sftp, dir).catch((cause: SftpError) => {
    throw sftpFailed('stat', dir, label, cause);
  });
  if (existing?.isDirectory()) return;
  if (existing) {
    throw new DeployerError(
      'SFTP_FAILED',
      `${dir} on ${label} exists but is not a directory; choose another directory.`,
      {
        host: label,
      },
    );
  }
  const absolute = dir.startsWith('/');
  const parts = dir.split('/').filter((part) => part !== '' && part !== '.');
  let current = absolute ? '' : '.';
  for (const part of parts) {
    current = absolute ? `${current}/${part}` : `${current === '.' ? '' : `${current}/`}${part}`;
    if (part === '..') continue;
    const stats = await stat(sftp, current).catch((cause: SftpError) => {
      throw sftpFailed('stat', current, label, cause);
    });
    if (stats?.isDirectory()) continue;
    if (stats) {
      throw new DeployerError(
        'SFTP_FAILED',
        `${current} on ${label} exists but is not a directory; choose another directory.`,
        {
          host: label,
        },
      );
    }
    const made = current;
    await call((done) => sftp.mkdir(made, { mode: 0o700 }, done)).catch(
      async (cause: SftpError) => {
        // Another deploy may have created it in the meantime.
        if ((await stat(sftp, made).catch(() => undefined))?.isDirectory()) return;
        throw sftpFailed('mkdir', made, label, cause);
      },
    );
  }
}

/** The absolute form of a remote path (SFTP `realpath`). */
export function realpath(sftp: SFTPWrapper, path: string, label: string): Promise<string> {
  return new Promise((resolve, reject) => {
    sftp.realpath(path, (cause, absolute) => {
      if (cause) reject(sftpFailed('realpath', path, label, cause));
      else resolve(absolute);
    });
  });
}

/**
 * Writes `data` to `path` so that it is never readable by others: the mode is given at open
 * (new files) and set again on the open handle before any byte is written (existing files).
 */
export async function writePrivateFile(
  sftp: SFTPWrapper,
  path: string,
  data: Buffer,
  mode: number,
  label: string,
): Promise<void> {
  const handle = await new Promise<Buffer>((resolve, reject) => {
    sftp.open(path, 'w', { mode }, (cause, opened) => {
      if (cause) reject(sftpFailed('open', path, label, cause));
      else resolve(opened);
    });
  });
  let failure: DeployerError | undefined;
  try {
    await call((done) => sftp.fchmod(handle, mode, done)).catch((cause: SftpError) => {
      throw sftpFailed('fchmod', path, label, cause);
    });
    if (data.length > 0) {
      await call((done) => sftp.write(handle, data, 0, data.length, 0, done)).catch(
        (cause: SftpError) => {
          throw sftpFailed('write', path, label, cause);
        },
      );
    }
  } catch (error) {
    failure = error as DeployerError;
  }
  const closeError = await call((done) => sftp.close(handle, done)).then(
    () => undefined,
    (cause: SftpError) => sftpFailed('close', path, label, cause),
  );
  // The first failure explains the problem; a close error after it is only a consequence.
  if (failure ?? closeError) throw failure ?? closeError;
}
