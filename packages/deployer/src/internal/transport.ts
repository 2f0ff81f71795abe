import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { Client } from 'ssh2';
import { DeployerError } from '../deployer-error.js';

/** A byte stream to the SSH server, plus what to clean up and report when it fails. */
export interface Transport {
  sock: Duplex;
  /** How the stream was made, for messages (`tcp`, `ProxyCommand …`, `jump host …`). */
  via: string;
  /** Extra text for connection errors (ProxyCommand exit status and stderr). */
  diagnostics(): Promise<string>;
  /** Releases what the transport owns (the ProxyCommand process). */
  dispose(): void;
}

/** Opens a TCP connection, failing with `CONNECT_FAILED` after `timeoutMs`. */
export function connectTcp(host: string, port: number, timeoutMs: number): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const socket: Socket = createConnection({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new DeployerError(
          'CONNECT_FAILED',
          `connecting to ${host}:${port} timed out after ${timeoutMs} ms. Check the host name and port, that sshd runs there, and that no firewall drops the packets (raise \`connectTimeoutMs\` for slow links).`,
          { host: `${host}:${port}` },
        ),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve({
        sock: socket,
        via: 'tcp',
        diagnostics: async () => '',
        dispose: () => {},
      });
    });
    socket.once('error', (cause: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      const hint =
        cause.code === 'ECONNREFUSED'
          ? 'Nothing listens there: check the port (`port` option or `Port` in ~/.ssh/config) and that sshd is running.'
          : cause.code === 'ENOTFOUND' || cause.code === 'EAI_AGAIN'
            ? 'The host name does not resolve: check `host`, or `HostName` in ~/.ssh/config.'
            : 'Check the host name, the port and the network.';
      reject(
        new DeployerError(
          'CONNECT_FAILED',
          `cannot connect to ${host}:${port}: ${cause.message}. ${hint}`,
          { host: `${host}:${port}`, cause },
        ),
      );
    });
  });
}

/**
 * Runs a `ProxyCommand` through `/bin/sh -c 'exec …'` (as OpenSSH does) and uses its stdin and
 * stdout as the connection. Its stderr is kept (the last few KB) for error messages.
 */
export function spawnProxyCommand(command: string): Transport {
  const child: ChildProcess = spawn('/bin/sh', ['-c', `exec ${command}`], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  let exit = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  // 'close' (not 'exit') so that all of stderr has been read by then.
  const closed = new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      exit = signal === null ? `exit code ${code}` : `signal ${signal}`;
      resolve();
    });
  });
  if (child.stdin === null || child.stdout === null) {
    throw new DeployerError('CONNECT_FAILED', `cannot start ProxyCommand ${command}`);
  }
  const sock = Duplex.from({ readable: child.stdout, writable: child.stdin });
  // A dying proxy also surfaces as a stream error; the handshake reports it with diagnostics().
  sock.on('error', () => {});
  child.once('error', (cause) => {
    stderr += `\n${cause.message}`;
    sock.destroy();
  });
  return {
    sock,
    via: `ProxyCommand ${command}`,
    async diagnostics() {
      // The SSH side usually notices a dead proxy (EPIPE, EOF) before the process is reaped.
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      return [
        exit && `ProxyCommand ended with ${exit}`,
        stderr.trim() && `its stderr: ${stderr.trim()}`,
      ]
        .filter(Boolean)
        .join('; ');
    },
    dispose: () => {
      sock.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill();
    },
  };
}

/** Opens a `direct-tcpip` channel from a jump host to `host:port` (`ssh -W host:port`). */
export function forwardThrough(
  jump: Client,
  jumpLabel: string,
  host: string,
  port: number,
): Promise<Transport> {
  return new Promise((resolve, reject) => {
    jump.forwardOut('127.0.0.1', 0, host, port, (cause, channel) => {
      if (cause) {
        reject(
          new DeployerError(
            'CONNECT_FAILED',
            `jump host ${jumpLabel} could not open a connection to ${host}:${port}: ${cause.message}. Check that ${host}:${port} is reachable from the jump host and that its sshd allows TCP forwarding (AllowTcpForwarding).`,
            { host: `${host}:${port}`, cause },
          ),
        );
        return;
      }
      resolve({
        sock: channel,
        via: `jump host ${jumpLabel}`,
        diagnostics: async () => '',
        dispose: () => channel.destroy(),
      });
    });
  });
}
