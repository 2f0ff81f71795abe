import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { DeployerError } from '../deployer-error.js';
import {
  type AuthAttempts,
  createAuthAttempts,
  defaultKeyFiles,
  type KeyCandidate,
} from './auth.js';
import { knownHostsFiles, prepareHostKeyCheck } from './host-verifier.js';
import { notStarted } from './not-started.js';
import {
  expandTilde,
  type HostSettings,
  type ParsedSshConfig,
  parseProxyJump,
  resolveHost,
} from './ssh-config.js';
import { connectTcp, forwardThrough, spawnProxyCommand, type Transport } from './transport.js';

/** Settings shared by every hop of one connection (target and jump hosts). */
export interface ConnectContext {
  config: ParsedSshConfig;
  /** Explicit known_hosts file, replacing the defaults. */
  knownHostsFile: string | undefined;
  acceptNewHostKey: boolean;
  /** Explicit agent choice: a socket path, `false` for none, undefined to follow config/env. */
  agent: string | false | undefined;
  /** Explicit TCP connect timeout; else `ConnectTimeout` from the config, else 10 s. */
  connectTimeoutMs: number | undefined;
  readyTimeoutMs: number;
}

/** Key material that applies to the target host only (OpenSSH's `-i`). */
export interface TargetKey {
  keyfile: string | undefined;
  passphrase: string | undefined;
}

/** What a remote command produced. */
export interface CommandOutput {
  stdout: string;
  stderr: string;
  /** Exit status, or `-1` when the command ended without one (killed by a signal). */
  code: number;
  signal?: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const MAX_JUMP_DEPTH = 8;

/** One authenticated SSH connection, possibly on top of a jump host's connection. */
export class SshConnection {
  readonly client: Client;
  /** `user@host:port` (and the alias, and the route) for messages. */
  readonly label: string;
  #closed = false;
  #sftp: Promise<SFTPWrapper> | undefined;
  readonly #transport: Transport;
  readonly #jump: SshConnection | undefined;
  readonly #closeListeners = new Set<() => void>();

  constructor(
    client: Client,
    label: string,
    transport: Transport,
    jump: SshConnection | undefined,
  ) {
    this.client = client;
    this.label = label;
    this.#transport = transport;
    this.#jump = jump;
    // Errors after the handshake (reset, keepalive timeout) are always followed by 'close'.
    client.on('error', () => {});
    client.on('end', () => this.#markClosed());
    client.on('close', () => this.#markClosed());
  }

  /** True once the connection ended; the next user must open a new one. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Calls `listener` once when the connection ends. */
  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#closeListeners.add(listener);
  }

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sftp = undefined;
    this.#transport.dispose();
    void this.#jump?.end();
    for (const listener of this.#closeListeners) listener();
    this.#closeListeners.clear();
  }

  #lost(what: string): DeployerError {
    return new DeployerError(
      'CONNECTION_LOST',
      `the SSH connection to ${this.label} dropped ${what}. The next call reconnects; check the server if this repeats.`,
      { host: this.label },
    );
  }

  /** The connection's SFTP session, opened on first use and reused until it closes. */
  sftp(): Promise<SFTPWrapper> {
    if (this.#sftp) return this.#sftp;
    const session = new Promise<SFTPWrapper>((resolve, reject) => {
      this.client.sftp((cause, sftp) => {
        if (cause) {
          const error = this.#closed
            ? this.#lost('before the SFTP session started')
            : new DeployerError(
                'CHANNEL_FAILED',
                `cannot start SFTP on ${this.label}: ${cause.message}. Check that sshd_config has an sftp Subsystem (e.g. \`Subsystem sftp internal-sftp\`).`,
                { host: this.label, cause },
              );
          if (this.#closed) notStarted.add(error);
          reject(error);
          return;
        }
        sftp.on('close', () => {
          if (this.#sftp === session) this.#sftp = undefined;
        });
        resolve(sftp);
      });
    });
    this.#sftp = session;
    session.catch(() => {
      if (this.#sftp === session) this.#sftp = undefined;
    });
    return session;
  }

  /** Runs `command` in a new session channel; resolves with its output whatever the exit code. */
  exec(
    command: string,
    options: { stdin?: string | Uint8Array | undefined; timeoutMs?: number | undefined },
  ): Promise<CommandOutput> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (cause, stream) => {
        if (cause) {
          const error = this.#closed
            ? this.#lost('before the command started')
            : new DeployerError(
                'CHANNEL_FAILED',
                `${this.label} refused to open a session for \`${command}\`: ${cause.message}. Too many commands at once can exceed sshd's MaxSessions (default 10).`,
                { host: this.label, command, cause },
              );
          if (this.#closed) notStarted.add(error);
          reject(error);
          return;
        }
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code: number | undefined;
        let signal: string | undefined;
        let timedOut = false;
        const text = (chunks: Buffer[]): string => Buffer.concat(chunks).toString('utf8');
        const timer =
          options.timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                timedOut = true;
                sendKill(stream);
                // Closing at once could overtake the signal, and closing alone leaves the process
                // running; servers that ignore signals still get the close a moment later.
                setTimeout(() => stream.close(), 1000).unref();
                reject(
                  new DeployerError(
                    'COMMAND_TIMEOUT',
                    `\`${command}\` on ${this.label} did not finish within ${options.timeoutMs} ms; it was sent KILL. Raise \`timeoutMs\` if it needs longer.`,
                    { host: this.label, command, stdout: text(stdout), stderr: text(stderr) },
                  ),
                );
              }, options.timeoutMs);
        stream.on('data', (chunk: Buffer) => stdout.push(chunk));
        stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        stream.on('exit', (exitCode: number | null, exitSignal?: string) => {
          if (typeof exitCode === 'number') code = exitCode;
          if (exitSignal) signal = exitSignal;
        });
        stream.on('close', () => {
          clearTimeout(timer);
          if (timedOut) return;
          if (code === undefined && signal === undefined && this.#closed) {
            reject(
              this.#lost(`while \`${command}\` was running (it may or may not have finished)`),
            );
            return;
          }
          resolve({
            stdout: text(stdout),
            stderr: text(stderr),
            code: code ?? -1,
            ...(signal === undefined ? {} : { signal }),
          });
        });
        stream.end(options.stdin === undefined ? undefined : Buffer.from(options.stdin));
      });
    });
  }

  /** Ends this connection (and the jump hosts under it) and waits until it is closed. */
  async end(): Promise<void> {
    if (!this.#closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.client.destroy();
          resolve();
        }, 2000);
        this.onClose(() => {
          clearTimeout(timer);
          resolve();
        });
        this.client.end();
      });
    }
    await this.#jump?.end();
  }
}

/** The parts of an ssh2 channel that {@link sendKill} reaches into. */
interface ChannelInternals {
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { signal?: (id: number, signal: string) => void } };
}

/**
 * Sends a `signal` channel request for KILL. ssh2's public `signal()` stays silent once stdin is
 * at EOF (which `exec` always reaches, so that commands reading stdin end), although the server
 * still honours the request then; so the request is sent through ssh2's protocol object directly
 * when the public method would drop it.
 */
function sendKill(stream: ClientChannel): void {
  const channel = stream as unknown as ChannelInternals;
  const { outgoing } = channel;
  const protocol = channel._client?._protocol;
  if (outgoing?.state === 'eof' && typeof outgoing.id === 'number' && protocol?.signal) {
    try {
      protocol.signal(outgoing.id, 'KILL');
    } catch {
      // The channel closed meanwhile; nothing left to kill.
    }
    return;
  }
  stream.signal('KILL');
}

function describe(settings: HostSettings): string {
  const where = `${settings.user}@${settings.hostname}:${settings.port}`;
  return settings.alias === settings.hostname ? where : `${settings.alias} (${where})`;
}

function formatHop(settings: {
  host: string;
  user: string | undefined;
  port: number | undefined;
}): string {
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  return `${settings.user === undefined ? '' : `${settings.user}@`}${host}${settings.port === undefined ? '' : `:${settings.port}`}`;
}

function resolveAgent(
  explicit: string | false | undefined,
  fromConfig: string | undefined,
): string | undefined {
  if (explicit === false) return undefined;
  if (explicit !== undefined) return expandTilde(explicit);
  if (fromConfig !== undefined && fromConfig.toLowerCase() === 'none') return undefined;
  if (fromConfig !== undefined && fromConfig !== 'SSH_AUTH_SOCK') return fromConfig;
  const env = process.env.SSH_AUTH_SOCK;
  return env === undefined || env === '' ? undefined : env;
}

async function openTransport(
  settings: HostSettings,
  context: ConnectContext,
  depth: number,
): Promise<{ transport: Transport; jump: SshConnection | undefined }> {
  if (settings.proxyJump !== undefined) {
    if (depth >= MAX_JUMP_DEPTH) {
      throw new DeployerError(
        'INVALID_CONFIG',
        `ProxyJump chain to ${settings.alias} is deeper than ${MAX_JUMP_DEPTH} hops; is there a loop in the ssh config (e.g. a \`Host *\` ProxyJump without \`ProxyJump none\` on the jump host)?`,
      );
    }
    // OpenSSH reaches `-J a,b target` as `ssh -J a -W target b`: the last hop carries the
    // connection and is itself reached through the hops before it.
    const hops = parseProxyJump(settings.proxyJump);
    const last = hops.pop();
    if (last === undefined) throw new DeployerError('INVALID_CONFIG', 'empty ProxyJump');
    let jumpSettings = resolveHost(context.config, last.host, { user: last.user, port: last.port });
    if (hops.length > 0) {
      jumpSettings = {
        ...jumpSettings,
        proxyJump: hops.map(formatHop).join(','),
        proxyCommand: undefined,
      };
    }
    const jump = await connectHost(
      jumpSettings,
      context,
      { keyfile: undefined, passphrase: undefined },
      depth + 1,
    );
    try {
      return {
        transport: await forwardThrough(jump.client, jump.label, settings.hostname, settings.port),
        jump,
      };
    } catch (error) {
      await jump.end();
      throw error;
    }
  }
  if (settings.proxyCommand !== undefined) {
    return { transport: spawnProxyCommand(settings.proxyCommand), jump: undefined };
  }
  const timeout =
    context.connectTimeoutMs ?? settings.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return {
    transport: await connectTcp(settings.hostname, settings.port, timeout),
    jump: undefined,
  };
}

function authFailed(
  label: string,
  user: string,
  attempts: AuthAttempts,
  why: string,
  cause?: unknown,
): DeployerError {
  const tried =
    attempts.tried.length > 0
      ? attempts.tried.join('; ')
      : 'nothing (no agent and no usable key file)';
  const notes = attempts.notes.length > 0 ? ` Notes: ${attempts.notes.join('; ')}.` : '';
  return new DeployerError(
    'AUTH_FAILED',
    `authentication as "${user}" to ${label} failed (${why}). Tried: ${tried}.${notes} Make sure the matching public key is in ~/.ssh/authorized_keys of ${user} on the server, then pass \`keyfile\`, set IdentityFile in ~/.ssh/config, or load the key into ssh-agent.`,
    { host: label, cause },
  );
}

/**
 * Connects to one host as OpenSSH would: transport (TCP, ProxyCommand or ProxyJump), host key
 * check against known_hosts, then public key authentication (agent, keyfile, config
 * IdentityFiles, default keys).
 */
export async function connectHost(
  settings: HostSettings,
  context: ConnectContext,
  key: TargetKey,
  depth = 0,
): Promise<SshConnection> {
  const { transport, jump } = await openTransport(settings, context, depth);
  const route = transport.via === 'tcp' ? '' : ` via ${transport.via}`;
  const label = `${describe(settings)}${route}`;
  const hostKey = prepareHostKeyCheck({
    files: knownHostsFiles(context.knownHostsFile, settings.userKnownHostsFiles),
    host: settings.hostKeyAlias ?? settings.hostname,
    port: settings.port,
    isAlias: settings.hostKeyAlias !== undefined,
    label,
    acceptNew: context.acceptNewHostKey,
  });
  const agent = resolveAgent(context.agent, settings.identityAgent);
  const keys: KeyCandidate[] = [
    ...(key.keyfile === undefined
      ? []
      : [{ path: expandTilde(key.keyfile), passphrase: key.passphrase, explicit: true }]),
    ...settings.identityFiles.map((path) => ({ path, explicit: true })),
    ...defaultKeyFiles().map((path) => ({ path, explicit: false })),
  ];
  const attempts = createAuthAttempts({ username: settings.user, agent, keys });
  const client = new Client();

  return new Promise<SshConnection>((resolve, reject) => {
    let settled = false;
    const fail = (cause: (Error & { level?: string }) | undefined): void => {
      if (settled) return;
      settled = true;
      client.destroy();
      void explain(cause).then((error) => {
        transport.dispose();
        void jump?.end();
        reject(error);
      });
    };
    const explain = async (
      cause: (Error & { level?: string }) | undefined,
    ): Promise<DeployerError> => {
      const refused = hostKey.failure();
      if (refused) return refused;
      const diagnostics = await transport.diagnostics();
      const extra = diagnostics === '' ? '' : ` (${diagnostics})`;
      if (cause?.level === 'client-authentication') {
        return authFailed(label, settings.user, attempts, 'every method was refused', cause);
      }
      if (cause?.level === 'client-timeout') {
        return new DeployerError(
          'CONNECT_FAILED',
          `the SSH handshake with ${label} did not finish within ${context.readyTimeoutMs} ms${extra}. Check that an SSH server answers there (raise \`readyTimeoutMs\` for slow links).`,
          { host: label, cause },
        );
      }
      if (cause === undefined && attempts.tried.length > 0) {
        return authFailed(
          label,
          settings.user,
          attempts,
          'the server closed the connection; too many keys offered for its MaxAuthTries?',
        );
      }
      return new DeployerError(
        'CONNECT_FAILED',
        `SSH connection to ${label} failed: ${cause?.message ?? 'closed during the handshake'}${extra}. Check that an SSH server listens there and that \`ssh\` itself can connect.`,
        { host: label, cause },
      );
    };

    client.on('ready', () => {
      settled = true;
      resolve(new SshConnection(client, label, transport, jump));
    });
    client.on('error', (cause: Error & { level?: string }) => {
      if (cause.level === 'agent') {
        attempts.notes.push(`ssh-agent at ${agent} is unusable: ${cause.message}`);
        return;
      }
      fail(cause);
    });
    client.on('close', () => fail(undefined));

    const config: ConnectConfig = {
      sock: transport.sock,
      username: settings.user,
      readyTimeout: context.readyTimeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
      algorithms: { serverHostKey: hostKey.algorithms },
      hostVerifier: (hostKeyBlob: Buffer) => hostKey.verify(hostKeyBlob),
      // @types/ssh2 omits the `null` and `false` that ssh2 really uses here (see AuthHandler).
      authHandler: attempts.handler as unknown as ConnectConfig['authHandler'],
    };
    try {
      client.connect(config);
    } catch (cause) {
      settled = true;
      transport.dispose();
      void jump?.end();
      reject(
        new DeployerError(
          'INVALID_CONFIG',
          `cannot start an SSH connection to ${label}: ${String(cause)}`,
          { host: label, cause },
        ),
      );
    }
  });
}
