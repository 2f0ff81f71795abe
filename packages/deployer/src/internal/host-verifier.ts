import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { DeployerError } from '../deployer-error.js';
import {
  checkHostKey,
  fingerprint,
  formatKnownHostsLine,
  type KnownHostEntry,
  keyTypeOf,
  knownHostName,
  knownKeyTypes,
  parseKnownHosts,
} from './known-hosts.js';

/** Which known_hosts files to read, and which one learns new keys. */
export interface KnownHostsFiles {
  /** Files whose keys are trusted (missing files count as empty). */
  read: string[];
  /** The file `acceptNewHostKey` appends to. */
  write: string;
}

/**
 * OpenSSH's defaults: `UserKnownHostsFile` (else `~/.ssh/known_hosts` and `known_hosts2`) plus
 * the global `/etc/ssh/ssh_known_hosts` files. An explicit file replaces all of them, so a caller
 * that names one file gets exactly that file's trust.
 */
export function knownHostsFiles(
  explicit: string | undefined,
  fromConfig: string[] | undefined,
): KnownHostsFiles {
  if (explicit !== undefined) return { read: [explicit], write: explicit };
  const user = fromConfig ?? [
    join(homedir(), '.ssh', 'known_hosts'),
    join(homedir(), '.ssh', 'known_hosts2'),
  ];
  return {
    read: [...user, '/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
    write: user[0] ?? join(homedir(), '.ssh', 'known_hosts'),
  };
}

function readEntries(files: string[]): KnownHostEntry[] {
  return files.flatMap((file) => {
    if (!existsSync(file)) return [];
    try {
      return parseKnownHosts(readFileSync(file, 'utf8'), file);
    } catch (cause) {
      throw new DeployerError('INVALID_CONFIG', `cannot read known_hosts file ${file}`, { cause });
    }
  });
}

/** Host key algorithms ssh2 supports by default, in its order of preference. */
const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;

/** A host key algorithm name ssh2 accepts in `algorithms.serverHostKey`. */
export type HostKeyAlgorithm = (typeof DEFAULT_HOST_KEY_ALGORITHMS)[number];

function algorithmsFor(keyType: string): HostKeyAlgorithm[] {
  return keyType === 'ssh-rsa'
    ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']
    : DEFAULT_HOST_KEY_ALGORITHMS.filter((name) => name === keyType);
}

/** Everything needed to check one server's host key during the handshake. */
export interface HostKeyCheck {
  /** Host key algorithms with the types already recorded for this host first (as OpenSSH). */
  algorithms: HostKeyAlgorithm[];
  /** ssh2 `hostVerifier` (raw key blob in, accept or refuse out). */
  verify(key: Buffer): boolean;
  /** Why `verify` refused, once it has. */
  failure(): DeployerError | undefined;
}

/** Options of {@link prepareHostKeyCheck}. */
export interface HostKeyCheckOptions {
  files: KnownHostsFiles;
  /** Connection host name (or `HostKeyAlias`) and port, as known_hosts records them. */
  host: string;
  port: number;
  /** `HostKeyAlias` was used: OpenSSH then looks the alias up without a port. */
  isAlias: boolean;
  /** For messages: who we are talking to. */
  label: string;
  acceptNew: boolean;
}

function keyscanHint(host: string, port: number, file: string): string {
  const home = homedir();
  const shown = file.startsWith(`${home}/`) ? `~${file.slice(home.length)}` : file;
  return `ssh-keyscan ${port === 22 ? '' : `-p ${port} `}${host} >> ${shown}`;
}

/** Reads known_hosts now and returns the verifier for one handshake. */
export function prepareHostKeyCheck(options: HostKeyCheckOptions): HostKeyCheck {
  const { files, host, port, label } = options;
  const name = options.isAlias ? host.toLowerCase() : knownHostName(host, port);
  const entries = readEntries(files.read);
  const preferred = knownKeyTypes(entries, name).flatMap(algorithmsFor);
  const algorithms = [...new Set([...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS])];
  let failed: DeployerError | undefined;
  const where = files.read.join(', ');

  return {
    algorithms,
    failure: () => failed,
    verify(key: Buffer): boolean {
      const type = keyTypeOf(key);
      const print = fingerprint(key);
      const details = { host: label, fingerprint: print };
      const verdict = checkHostKey(entries, name, key);
      switch (verdict.status) {
        case 'known':
          return true;
        case 'revoked':
          failed = new DeployerError(
            'HOST_KEY_REVOKED',
            `the host key of ${label} (${type} ${print}) is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}; refusing to connect. Ask the server's administrator for its current key.`,
            details,
          );
          return false;
        case 'changed': {
          const entry = verdict.entries[0] as KnownHostEntry;
          failed = new DeployerError(
            'HOST_KEY_CHANGED',
            `HOST KEY CHANGED for ${label}: the server sent ${type} ${print}, but ${entry.file}:${entry.line} records a different ${type} key for "${name}". This can be a man-in-the-middle attack, or the server was reinstalled. Refusing to connect. Once you have confirmed the new fingerprint with the server's administrator, remove the old entry with \`ssh-keygen -R '${name}' -f ${entry.file}\` and add the new key (e.g. \`${keyscanHint(host, port, files.write)}\`). \`acceptNewHostKey\` never replaces a changed key.`,
            details,
          );
          return false;
        }
        case 'unknown': {
          if (options.acceptNew) {
            try {
              mkdirSync(dirname(files.write), { recursive: true, mode: 0o700 });
              appendFileSync(files.write, `${formatKnownHostsLine(name, key)}\n`, { mode: 0o600 });
            } catch (cause) {
              failed = new DeployerError(
                'INVALID_CONFIG',
                `cannot record the new host key of ${label} in ${files.write}: ${String(cause)}`,
                { ...details, cause },
              );
              return false;
            }
            return true;
          }
          const others =
            verdict.otherKeyTypes.length > 0
              ? ` known_hosts has ${verdict.otherKeyTypes.join(', ')} key(s) for "${name}", but the server did not offer that type.`
              : '';
          failed = new DeployerError(
            'HOST_KEY_UNKNOWN',
            `the host key of ${label} is not known: the server sent ${type} ${print}, and "${name}" has no ${type} key in ${where}.${others} Check the fingerprint with the server's administrator (\`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\` on the server), then add the key: \`${keyscanHint(host, port, files.write)}\` (or \`ssh\` to it once and answer yes), or pass \`acceptNewHostKey: true\` to record it on first contact.`,
            details,
          );
          return false;
        }
      }
    },
  };
}
