import { posix } from 'node:path';
import { DeployerError } from './deployer-error.js';
import { gridEngineCommands, parseQsubJobId } from './gridengine.js';
import { commandError } from './internal/command-error.js';
import type { ConnectContext, SshConnection } from './internal/connection.js';
import { notStarted } from './internal/not-started.js';
import { ensureDirectory, realpath, remotePath, writePrivateFile } from './internal/sftp.js';
import { expandTilde, readSshConfig, resolveHost } from './internal/ssh-config.js';
import { shellQuote } from './shell-quote.js';

/** How to reach the server. Explicit options win over `~/.ssh/config`. */
export interface DeployerOptions {
  /** Host name, IP address, or a `Host` alias from the ssh config. */
  host: string;
  /**
   * SSH port.
   * @default `Port` from the ssh config, else 22
   */
  port?: number;
  /**
   * Remote user name.
   * @default `User` from the ssh config, else the local user name
   */
  user?: string;
  /**
   * Private key file (OpenSSH, PEM or PuTTY format). Tried after the agent and before the ssh
   * config's `IdentityFile`s and the default keys (`~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`).
   * @default none
   */
  keyfile?: string;
  /**
   * Passphrase for `keyfile`. Other passphrase-protected keys are skipped (load them into
   * ssh-agent instead).
   * @default none
   */
  passphrase?: string;
  /**
   * The known_hosts file to check host keys against and to record new keys in. When given, it
   * replaces the defaults entirely.
   * @default `UserKnownHostsFile` from the ssh config, else `~/.ssh/known_hosts` and
   * `~/.ssh/known_hosts2`, plus `/etc/ssh/ssh_known_hosts{,2}` (read only)
   */
  knownHostsFile?: string;
  /**
   * The ssh config file to read, or `false` to read none.
   * @default `~/.ssh/config` (missing is fine)
   */
  sshConfigFile?: string | false;
  /**
   * First contact: record an unknown host key in known_hosts and connect (OpenSSH's
   * `StrictHostKeyChecking accept-new`). A changed or revoked key is still refused.
   * @default false
   */
  acceptNewHostKey?: boolean;
  /**
   * ssh-agent socket path, or `false` to not use an agent.
   * @default `IdentityAgent` from the ssh config, else `SSH_AUTH_SOCK`
   */
  agent?: string | false;
  /**
   * Timeout for the TCP connection (direct connections only).
   * @default `ConnectTimeout` from the ssh config, else 10000
   */
  connectTimeoutMs?: number;
  /**
   * Timeout for the SSH handshake and authentication, per hop.
   * @default 20000
   */
  readyTimeoutMs?: number;
}

/** Options of {@link Deployer.exec} and {@link Deployer.run}. */
export interface ExecOptions {
  /**
   * Bytes for the command's standard input; it is closed after them.
   * @default empty (stdin is closed at once)
   */
  stdin?: string | Uint8Array;
  /**
   * Give up after this long: the command is sent KILL and the call fails with `COMMAND_TIMEOUT`.
   * @default no limit
   */
  timeoutMs?: number;
  /**
   * Run the command through `bash -lc`, so login files (`/etc/profile`, `~/.bash_profile`) set
   * PATH and the scheduler environment first.
   * @default false
   */
  loginShell?: boolean;
}

/** What a remote command produced. {@link Deployer.exec} returns it whatever the exit code. */
export interface ExecResult {
  /** Standard output, decoded as UTF-8. */
  stdout: string;
  /** Standard error, decoded as UTF-8. */
  stderr: string;
  /** Exit status; `-1` when the command ended without one (see `signal`). */
  code: number;
  /** The signal that ended the command, when one did (`KILL`, `TERM`, …). */
  signal?: string;
}

/** Options of {@link Deployer.submit}. */
export interface SubmitOptions {
  /**
   * The job file's name inside the directory.
   * @default `sheepdog-<requestId>.cjs`
   */
  fileName?: string;
  /**
   * Extra qsub arguments, placed before the file name; each is quoted for the remote shell.
   * @default []
   */
  args?: string[];
  /**
   * The directive prefix passed as `qsub -C`: option lines in the job file start with it.
   * @default '//$'
   */
  directivePrefix?: string;
  /**
   * The qsub program: a name on the remote PATH or an absolute path.
   * @default 'qsub'
   */
  qsub?: string;
  /**
   * Run qsub through `bash -lc` (see {@link ExecOptions.loginShell}).
   * @default false
   */
  loginShell?: boolean;
}

/** The default job file name of a request: `sheepdog-<requestId>.cjs`. */
export function jobFileName(requestId: number | string): string {
  return `sheepdog-${requestId}.cjs`;
}

function checkFileName(fileName: string): string {
  if (fileName === '' || fileName === '.' || fileName === '..' || fileName.includes('/')) {
    throw new DeployerError(
      'INVALID_CONFIG',
      `job file name ${JSON.stringify(fileName)} must be a plain file name (no "/"); pass the directory separately`,
    );
  }
  return fileName;
}

function execOn(
  connection: SshConnection,
  command: string,
  options: ExecOptions,
): Promise<ExecResult> {
  const line = options.loginShell ? `bash -lc ${shellQuote(command)}` : command;
  return connection.exec(line, { stdin: options.stdin, timeoutMs: options.timeoutMs });
}

function validate(options: DeployerOptions): void {
  const problems: string[] = [];
  if (typeof options.host !== 'string' || options.host.trim() === '') {
    problems.push('host: must be a non-empty string');
  }
  if (
    options.port !== undefined &&
    (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)
  ) {
    problems.push(`port: must be an integer 1–65535, got ${String(options.port)}`);
  }
  for (const name of ['connectTimeoutMs', 'readyTimeoutMs'] as const) {
    const value = options[name];
    if (
      value !== undefined &&
      !(typeof value === 'number' && value > 0 && Number.isFinite(value))
    ) {
      problems.push(`${name}: must be a positive number of milliseconds, got ${String(value)}`);
    }
  }
  if (
    options.agent !== undefined &&
    options.agent !== false &&
    (typeof options.agent !== 'string' || options.agent === '')
  ) {
    problems.push('agent: must be a socket path or false');
  }
  if (problems.length > 0) {
    throw new DeployerError(
      'INVALID_CONFIG',
      `invalid Deployer options:\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
  }
}

/**
 * Uploads job files over SFTP and runs scheduler commands over SSH, on one connection that is
 * opened on first use, shared by concurrent calls, and re-opened after a drop.
 *
 * Connecting follows OpenSSH: `~/.ssh/config` (HostName, User, Port, IdentityFile, ProxyJump,
 * ProxyCommand), the agent then key files, and host keys checked against known_hosts. Call
 * {@link Deployer.close} when done: an open connection keeps the process alive.
 *
 * @example
 * ```ts
 * const deployer = new Deployer({ host: 'head.example.org' });
 * await deployer.deploy(jobfile, 42, '.sheepdog');
 * const jobId = await deployer.submit(42, '.sheepdog');
 * await deployer.close();
 * ```
 */
export class Deployer {
  /** The host as given to the constructor (a name, an address or an ssh config alias). */
  readonly host: string;
  readonly #options: DeployerOptions;
  #pending: Promise<SshConnection> | undefined;

  /**
   * @param options - where and how to connect; nothing happens until the first call
   * @throws DeployerError `INVALID_CONFIG` listing every invalid option
   */
  constructor(options: DeployerOptions) {
    validate(options);
    this.host = options.host;
    this.#options = { ...options };
  }

  async #connect(): Promise<SshConnection> {
    // The SSH layer (ssh2 and its crypto) loads on the first connection, not with this module:
    // a program that never connects, like a local-only map, never pays for it.
    const { connectHost } = await import('./internal/connection.js');
    const options = this.#options;
    const config = readSshConfig(options.sshConfigFile);
    const settings = resolveHost(config, options.host, { port: options.port, user: options.user });
    const context: ConnectContext = {
      config,
      knownHostsFile:
        options.knownHostsFile === undefined ? undefined : expandTilde(options.knownHostsFile),
      acceptNewHostKey: options.acceptNewHostKey === true,
      agent: options.agent,
      connectTimeoutMs: options.connectTimeoutMs,
      readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
    };
    return connectHost(settings, context, {
      keyfile: options.keyfile,
      passphrase: options.passphrase,
    });
  }

  /** The live connection, or one being opened (shared by every concurrent caller). */
  #connection(): Promise<SshConnection> {
    const current = this.#pending;
    if (current) {
      return current.then((connection) => {
        if (!connection.closed) return connection;
        if (this.#pending === current) this.#pending = undefined;
        return this.#connection();
      });
    }
    const opening = Promise.resolve().then(() => this.#connect());
    this.#pending = opening;
    opening.then(
      (connection) =>
        connection.onClose(() => {
          if (this.#pending === opening) this.#pending = undefined;
        }),
      () => {
        // Every caller waiting on `opening` gets the error; the next call tries again.
        if (this.#pending === opening) this.#pending = undefined;
      },
    );
    return opening;
  }

  /** Runs `work` on the connection, once more on a fresh one if it failed before reaching the server. */
  async #withConnection<T>(work: (connection: SshConnection) => Promise<T>): Promise<T> {
    const connection = await this.#connection();
    try {
      return await work(connection);
    } catch (error) {
      if (!(error instanceof Error) || !notStarted.has(error)) throw error;
      return work(await this.#connection());
    }
  }

  /**
   * Uploads a job file over SFTP. The directory (relative to the remote home unless absolute;
   * `~/` allowed) is created with mode 0700 where missing, and the file is written with mode 0600
   * from the moment it exists, because it holds the request's token. An existing file is
   * replaced.
   *
   * @param jobfile - the file's contents
   * @param requestId - names the file `sheepdog-<requestId>.cjs` unless `fileName` is given
   * @param directory - remote directory, e.g. `.sheepdog`
   * @param fileName - file name inside `directory`
   * @returns the remote absolute path of the file
   * @throws DeployerError `SFTP_FAILED`, `CONNECTION_LOST`, or a connection error
   */
  async deploy(
    jobfile: string | Uint8Array,
    requestId: number | string,
    directory: string,
    fileName: string = jobFileName(requestId),
  ): Promise<string> {
    const name = checkFileName(fileName);
    const data = Buffer.from(jobfile);
    const dir = remotePath(directory);
    return this.#withConnection(async (connection) => {
      const sftp = await connection.sftp();
      try {
        await ensureDirectory(sftp, dir, connection.label);
        const absoluteDir = await realpath(sftp, dir, connection.label);
        const path = posix.join(absoluteDir, name);
        await writePrivateFile(sftp, path, data, 0o600, connection.label);
        return path;
      } catch (error) {
        if (!connection.closed) throw error;
        throw new DeployerError(
          'CONNECTION_LOST',
          `the SSH connection to ${connection.label} dropped while uploading ${posix.join(dir, name)}; deploy again.`,
          { host: connection.label, cause: error },
        );
      }
    });
  }

  /**
   * Runs a command on the server. The exit code is returned, not thrown: check `code`.
   *
   * @param command - a shell command line; quote arguments with {@link shellQuote}
   * @returns stdout, stderr, exit code and signal
   * @throws DeployerError `COMMAND_TIMEOUT`, `CONNECTION_LOST`, `CHANNEL_FAILED`, or a connection error
   */
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.#withConnection((connection) => execOn(connection, command, options));
  }

  /**
   * Runs a command and fails unless it exits with 0.
   *
   * @returns stdout, stderr and code (always 0)
   * @throws DeployerError `COMMAND_NOT_FOUND` (exit 127), `COMMAND_FAILED` (other non-zero exit,
   * with stdout, stderr and exitCode), or the errors of {@link Deployer.exec}
   */
  async run(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.#withConnection(async (connection) => {
      const result = await execOn(connection, command, options);
      if (result.code !== 0) throw commandError(connection.label, command, result);
      return result;
    });
  }

  /**
   * Submits a deployed job file to Grid Engine: `cd <directory> && qsub -terse -C '//$' <args>
   * <file>`.
   *
   * @param requestId - names the file `sheepdog-<requestId>.cjs` unless `fileName` is given
   * @param directory - the directory given to {@link Deployer.deploy}
   * @returns the job id (`143` from `143.1-3:1` for array jobs)
   * @throws DeployerError `COMMAND_FAILED` with qsub's stderr and exit code, `COMMAND_NOT_FOUND`
   * when qsub is not on the remote PATH, `UNEXPECTED_OUTPUT` when qsub printed no job id
   */
  async submit(
    requestId: number | string,
    directory: string,
    options: SubmitOptions = {},
  ): Promise<string> {
    const file = checkFileName(options.fileName ?? jobFileName(requestId));
    const qsub = options.qsub ?? 'qsub';
    const command = gridEngineCommands.submit(directory, file, options);
    return this.#withConnection(async (connection) => {
      const result = await execOn(connection, command, { loginShell: options.loginShell === true });
      const host = connection.label;
      if (result.code !== 0) {
        throw commandError(host, command, result, {
          program: qsub,
          notFoundHint: "or pass `qsub: '/full/path/to/qsub'`",
        });
      }
      const jobId = parseQsubJobId(result.stdout);
      if (jobId === undefined) {
        throw new DeployerError(
          'UNEXPECTED_OUTPUT',
          `${qsub} on ${host} exited 0 but printed no job id (expected \`142\` or \`143.1-3:1\` from -terse): ${JSON.stringify(result.stdout.trim())}. Command: ${command}`,
          { host, command, exitCode: result.code, stdout: result.stdout, stderr: result.stderr },
        );
      }
      return jobId;
    });
  }

  /**
   * Closes the connection (and any jump host connections). Safe to call twice; a later call on
   * this deployer opens a new connection.
   */
  async close(): Promise<void> {
    const current = this.#pending;
    this.#pending = undefined;
    if (current === undefined) return;
    const connection = await current.catch(() => undefined);
    await connection?.end();
  }
}
