import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** One key line of a known_hosts file (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"). */
export interface KnownHostEntry {
  /** `@revoked` or `@cert-authority` marker, when the line has one. */
  marker: 'revoked' | 'cert-authority' | undefined;
  /** Comma-separated host patterns, or one `|1|salt|hash` hashed name. */
  hosts: string;
  /** Key type as written, e.g. `ssh-ed25519`. */
  keyType: string;
  /** The key blob (SSH wire format), base64-decoded. */
  key: Buffer;
  /** Where the line came from, for error messages. */
  file: string;
  /** 1-based line number. */
  line: number;
}

/**
 * Parses known_hosts text. Comments, blank lines and lines that do not look like keys are skipped,
 * as OpenSSH does.
 */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) continue;
    let marker: KnownHostEntry['marker'];
    if (fields[0].startsWith('@')) {
      const name = fields.shift();
      if (name === '@revoked') marker = 'revoked';
      else if (name === '@cert-authority') marker = 'cert-authority';
      else continue;
    }
    const [hosts, keyType, base64] = fields;
    if (hosts === undefined || keyType === undefined || base64 === undefined) continue;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) continue;
    entries.push({
      marker,
      hosts,
      keyType,
      key: Buffer.from(base64, 'base64'),
      file,
      line: index + 1,
    });
  }
  return entries;
}

/**
 * The name OpenSSH records and looks up for a host: `host` on port 22, `[host]:port` otherwise.
 */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host.toLowerCase() : `[${host.toLowerCase()}]:${port}`;
}

/** OpenSSH's `match_pattern`: `*` and `?` wildcards, case-insensitive. */
function globMatches(pattern: string, name: string): boolean {
  const source = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${source}$`).test(name);
}

function hashedNameMatches(hashed: string, name: string): boolean {
  const [, magic, salt, hash] = hashed.split('|');
  if (magic !== '1' || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * Whether an entry's host field names `name` (already in {@link knownHostName} form): a hashed
 * `|1|salt|hash` name, or a pattern list where any `!negated` match vetoes the line.
 */
export function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  if (entry.hosts.startsWith('|')) return hashedNameMatches(entry.hosts, name);
  let matched = false;
  for (const pattern of entry.hosts.split(',')) {
    if (pattern.startsWith('!')) {
      if (globMatches(pattern.slice(1), name)) return false;
    } else if (globMatches(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The key type named inside an SSH wire-format key blob (its first string). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const length = key.readUInt32BE(0);
  if (length > key.length - 4) return 'unknown';
  return key.subarray(4, 4 + length).toString('latin1');
}

/** OpenSSH's `SHA256:…` fingerprint of a key blob, as `ssh-keygen -l` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The outcome of checking a server's host key against known_hosts entries. */
export type HostKeyVerdict =
  | { status: 'known'; entry: KnownHostEntry }
  | { status: 'revoked'; entry: KnownHostEntry }
  | { status: 'changed'; entries: KnownHostEntry[] }
  | { status: 'unknown'; otherKeyTypes: string[] };

/**
 * Checks `key` for `name` the way OpenSSH's `check_host_key` does: a revoked key is refused
 * whatever else matches; a recorded key equal to it is accepted; a recorded key of the same type
 * but different bytes means the key changed; otherwise the host (or this key type) is new.
 * `@cert-authority` lines are ignored: host certificates are not supported.
 */
export function checkHostKey(entries: KnownHostEntry[], name: string, key: Buffer): HostKeyVerdict {
  const type = keyTypeOf(key);
  const revoked = entries.find(
    (e) => e.marker === 'revoked' && e.key.equals(key) && entryMatchesHost(e, name),
  );
  if (revoked) return { status: 'revoked', entry: revoked };
  const forHost = entries.filter((e) => e.marker === undefined && entryMatchesHost(e, name));
  const same = forHost.find((e) => e.key.equals(key));
  if (same) return { status: 'known', entry: same };
  const changed = forHost.filter((e) => e.keyType === type);
  if (changed.length > 0) return { status: 'changed', entries: changed };
  return { status: 'unknown', otherKeyTypes: [...new Set(forHost.map((e) => e.keyType))] };
}

/** Key types recorded for `name`, in file order, so the handshake can ask for one of them. */
export function knownKeyTypes(entries: KnownHostEntry[], name: string): string[] {
  const types = entries
    .filter((e) => e.marker === undefined && entryMatchesHost(e, name))
    .map((e) => e.keyType);
  return [...new Set(types)];
}

/** A plain (unhashed) known_hosts line for `name`, as `ssh-keyscan` would print it. */
export function formatKnownHostsLine(name: string, key: Buffer): string {
  return `${name} ${keyTypeOf(key)} ${key.toString('base64')}`;
}
