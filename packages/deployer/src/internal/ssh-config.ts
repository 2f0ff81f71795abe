import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import SSHConfig from 'ssh-config';
import { DeployerError } from '../deployer-error.js';

/** What OpenSSH would use to reach one host, after ssh config and explicit options. */
export interface HostSettings {
  /** The name the caller gave (an ssh config alias or a real host name). */
  alias: string;
  /** Where to connect (`HostName`, else the alias). */
  hostname: string;
  port: number;
  user: string;
  /** `IdentityFile` entries, `~` and `%` tokens expanded, in config order. */
  identityFiles: string[];
  /** `ProxyJump` value (comma-separated hops), unless absent or `none`. */
  proxyJump: string | undefined;
  /** `ProxyCommand` with `%` tokens expanded, unless absent or `none`. */
  proxyCommand: string | undefined;
  /** `HostKeyAlias`: the name to look up in known_hosts instead of `hostname`. */
  hostKeyAlias: string | undefined;
  /** `UserKnownHostsFile` entries, expanded; undefined when the config has none. */
  userKnownHostsFiles: string[] | undefined;
  /** `IdentityAgent` socket path, `none`, or undefined when the config has none. */
  identityAgent: string | undefined;
  /** `ConnectTimeout` in milliseconds. */
  connectTimeoutMs: number | undefined;
}

/** Values that win over the ssh config, as the constructor options do over `~/.ssh/config`. */
export interface HostOverrides {
  hostname?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
}

/** A parsed ssh config; empty when the default `~/.ssh/config` does not exist. */
export type ParsedSshConfig = SSHConfig;

function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? '';
  }
}

/**
 * Reads and parses an ssh config. An explicit file must exist; the default `~/.ssh/config` may
 * be missing (OpenSSH works without one); `false` means no config at all.
 */
export function readSshConfig(file: string | false | undefined): ParsedSshConfig {
  if (file === false) return new SSHConfig();
  const path = file === undefined ? join(homedir(), '.ssh', 'config') : expandTilde(file);
  if (file === undefined && !existsSync(path)) return new SSHConfig();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new DeployerError('INVALID_CONFIG', `cannot read ssh config ${path}: ${String(cause)}`, {
      cause,
    });
  }
  try {
    return SSHConfig.parse(text);
  } catch (cause) {
    throw new DeployerError(
      'INVALID_CONFIG',
      `cannot parse ssh config ${path}: ${cause instanceof Error ? cause.message : String(cause)}. Fix the file, or pass \`sshConfigFile\` pointing to another one.`,
      { cause },
    );
  }
}

/** Expands a leading `~/` (or a lone `~`) to the local home directory. */
export function expandTilde(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return path;
}

/**
 * Expands OpenSSH `%` tokens (`%%`, `%h`, `%p`, `%r`, `%n`, `%u`, `%d`) and `${VAR}`
 * environment references; an unknown token is left as written.
 */
export function expandTokens(value: string, tokens: Record<string, string>): string {
  return value
    .replace(/%(.)/g, (whole, letter: string) => (letter === '%' ? '%' : (tokens[letter] ?? whole)))
    .replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
      (whole, name: string) => process.env[name] ?? whole,
    );
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function list(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function parsePort(value: string, where: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DeployerError(
      'INVALID_CONFIG',
      `${where}: port ${JSON.stringify(value)} is not 1–65535`,
    );
  }
  return port;
}

/**
 * Resolves `alias` through the ssh config with ssh-config's `compute` (first value wins, as in
 * ssh_config(5)), then applies the overrides. `Include` directives are not followed.
 */
export function resolveHost(
  config: ParsedSshConfig,
  alias: string,
  overrides: HostOverrides = {},
): HostSettings {
  const computed = config.compute(
    overrides.user === undefined ? { Host: alias } : { Host: alias, User: overrides.user },
    { ignoreCase: true },
  );
  const user = overrides.user ?? first(computed.user) ?? localUser();
  const configPort = first(computed.port);
  const port =
    overrides.port ??
    (configPort === undefined ? 22 : parsePort(configPort, `ssh config for ${alias}`));
  const configHostname = first(computed.hostname);
  const hostname =
    overrides.hostname ??
    (configHostname === undefined ? alias : expandTokens(configHostname, { h: alias }));
  const tokens: Record<string, string> = {
    h: hostname,
    p: String(port),
    r: user,
    n: alias,
    u: localUser(),
    d: homedir(),
  };
  const expandPath = (path: string): string => expandTilde(expandTokens(path, tokens));
  const proxyJump = first(computed.proxyjump);
  const proxyCommand = first(computed.proxycommand);
  const knownHosts = list(computed.userknownhostsfile);
  const agent = first(computed.identityagent);
  const timeout = first(computed.connecttimeout);
  const timeoutSeconds = timeout === undefined ? Number.NaN : Number(timeout);
  return {
    alias,
    hostname,
    port,
    user,
    identityFiles: list(computed.identityfile)
      .filter((file) => file.toLowerCase() !== 'none')
      .map(expandPath),
    proxyJump:
      proxyJump === undefined || proxyJump.toLowerCase() === 'none' ? undefined : proxyJump,
    proxyCommand:
      proxyCommand === undefined || proxyCommand.toLowerCase() === 'none'
        ? undefined
        : expandTokens(proxyCommand, tokens),
    hostKeyAlias: first(computed.hostkeyalias),
    userKnownHostsFiles: knownHosts.length === 0 ? undefined : knownHosts.map(expandPath),
    identityAgent:
      agent === undefined || agent === 'SSH_AUTH_SOCK' || agent.toLowerCase() === 'none'
        ? agent
        : expandPath(agent),
    connectTimeoutMs:
      Number.isFinite(timeoutSeconds) && timeoutSeconds > 0 ? timeoutSeconds * 1000 : undefined,
  };
}

/** One hop of a `ProxyJump` list. */
export interface JumpHop {
  host: string;
  user: string | undefined;
  port: number | undefined;
}

/**
 * Splits a `ProxyJump` value (`[user@]host[:port]` or `ssh://[user@]host[:port]`, comma-separated,
 * IPv6 addresses in brackets) into hops, first hop first.
 */
export function parseProxyJump(value: string): JumpHop[] {
  return value.split(',').map((raw) => {
    const spec = raw.trim().replace(/^ssh:\/\//, '');
    const at = spec.lastIndexOf('@');
    const user = at === -1 ? undefined : spec.slice(0, at);
    const rest = at === -1 ? spec : spec.slice(at + 1);
    const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:]+)(?::(\d+))?$/.exec(rest);
    if (!match?.[1]) {
      throw new DeployerError(
        'INVALID_CONFIG',
        `ProxyJump hop ${JSON.stringify(raw)} is not [user@]host[:port]`,
      );
    }
    return {
      host: match[1],
      user: user === '' ? undefined : user,
      port: match[2] === undefined ? undefined : parsePort(match[2], `ProxyJump hop ${raw}`),
    };
  });
}
