import { describe, expect, it } from 'vitest';
import {
  checkHostKey,
  entryMatchesHost,
  fingerprint,
  formatKnownHostsLine,
  keyTypeOf,
  knownHostName,
  knownKeyTypes,
  parseKnownHosts,
} from './known-hosts.js';

// Two throwaway ed25519 keys; the hashed lines were produced by `ssh-keygen -H` from
// `[127.0.0.1]:2222 <K1>` and `head.example.org <K2>`.
const K1 = 'AAAAC3NzaC1lZDI1NTE5AAAAIHj12HS+/+lpc1LaZa9spJ5hTqDUn+uCX7fZXAbytaVb';
const K2 = 'AAAAC3NzaC1lZDI1NTE5AAAAIEUUGRiFAv0itYkzlUtX//HRdo6zf5HVSDgXk1w2rSfG';
const K1_FINGERPRINT = 'SHA256:gE65sJR/8SJ1/RjoBRlcfge0QLdqRLNYY8r78v+mAlU';
const HASHED = [
  `|1|fRq+6bMLNx4EHD15TN9PMx0LNPk=|s7nabxSdQ+vOh2L6pxbP4+1471c= ssh-ed25519 ${K1}`,
  `|1|cd3kFcXgV3zXm9cV1Lce8m8Fano=|EoJSZEQOP5Yke2GFnM9ZzXhSAaY= ssh-ed25519 ${K2}`,
].join('\n');
const key = (base64: string): Buffer => Buffer.from(base64, 'base64');

describe('parseKnownHosts', () => {
  it('reads plain, hashed and marked lines and skips comments and junk', () => {
    const entries = parseKnownHosts(
      [
        '# comment',
        '',
        `host1,10.0.0.1 ssh-ed25519 ${K1} a comment`,
        `@revoked * ssh-ed25519 ${K2}`,
        `@cert-authority *.example.org ssh-ed25519 ${K2}`,
        '@unknown-marker host ssh-ed25519 AAAA',
        'only-two fields',
        HASHED,
      ].join('\n'),
      'kh',
    );
    expect(entries.map((e) => [e.marker, e.hosts, e.keyType, e.line])).toEqual([
      [undefined, 'host1,10.0.0.1', 'ssh-ed25519', 3],
      ['revoked', '*', 'ssh-ed25519', 4],
      ['cert-authority', '*.example.org', 'ssh-ed25519', 5],
      [undefined, '|1|fRq+6bMLNx4EHD15TN9PMx0LNPk=|s7nabxSdQ+vOh2L6pxbP4+1471c=', 'ssh-ed25519', 8],
      [undefined, '|1|cd3kFcXgV3zXm9cV1Lce8m8Fano=|EoJSZEQOP5Yke2GFnM9ZzXhSAaY=', 'ssh-ed25519', 9],
    ]);
    expect(entries[0]?.key.equals(key(K1))).toBe(true);
    expect(entries[0]?.file).toBe('kh');
  });
});

describe('host names and patterns', () => {
  it('uses [host]:port for ports other than 22, as OpenSSH records them', () => {
    expect(knownHostName('Head.Example.org', 22)).toBe('head.example.org');
    expect(knownHostName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
  });

  it('matches hashed entries made by ssh-keygen -H', () => {
    const [first, second] = parseKnownHosts(HASHED, 'kh');
    if (!first || !second) throw new Error('fixture');
    expect(entryMatchesHost(first, '[127.0.0.1]:2222')).toBe(true);
    expect(entryMatchesHost(first, '127.0.0.1')).toBe(false);
    expect(entryMatchesHost(first, '[127.0.0.1]:22')).toBe(false);
    expect(entryMatchesHost(second, 'head.example.org')).toBe(true);
    expect(entryMatchesHost(second, 'other.example.org')).toBe(false);
  });

  it('matches wildcards and lets a negated pattern veto the line', () => {
    const [entry] = parseKnownHosts(
      `*.example.org,!bad.example.org,[10.0.0.?]:* ssh-ed25519 ${K1}`,
      'kh',
    );
    if (!entry) throw new Error('fixture');
    expect(entryMatchesHost(entry, 'head.example.org')).toBe(true);
    expect(entryMatchesHost(entry, 'HEAD.EXAMPLE.ORG'.toLowerCase())).toBe(true);
    expect(entryMatchesHost(entry, 'bad.example.org')).toBe(false);
    expect(entryMatchesHost(entry, 'example.org')).toBe(false);
    expect(entryMatchesHost(entry, '[10.0.0.7]:2222')).toBe(true);
    expect(entryMatchesHost(entry, '[10.0.0.17]:2222')).toBe(false);
  });
});

describe('checkHostKey', () => {
  const name = '[127.0.0.1]:2222';

  it('accepts a recorded key, plain or hashed', () => {
    expect(checkHostKey(parseKnownHosts(HASHED, 'kh'), name, key(K1)).status).toBe('known');
    const plain = parseKnownHosts(`${name} ssh-ed25519 ${K1}`, 'kh');
    expect(checkHostKey(plain, name, key(K1)).status).toBe('known');
  });

  it('reports a different key of the same type as changed, with the offending line', () => {
    const entries = parseKnownHosts(`# x\n${name} ssh-ed25519 ${K2}`, 'kh');
    const verdict = checkHostKey(entries, name, key(K1));
    expect(verdict.status).toBe('changed');
    if (verdict.status === 'changed') expect(verdict.entries[0]?.line).toBe(2);
  });

  it('reports an unrecorded host as unknown, naming other recorded key types', () => {
    expect(checkHostKey(parseKnownHosts(HASHED, 'kh'), '[127.0.0.1]:2223', key(K1))).toEqual({
      status: 'unknown',
      otherKeyTypes: [],
    });
    const rsaOnly = parseKnownHosts(`${name} ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQ==`, 'kh');
    expect(checkHostKey(rsaOnly, name, key(K1))).toEqual({
      status: 'unknown',
      otherKeyTypes: ['ssh-rsa'],
    });
  });

  it('refuses a revoked key even when it is also recorded as valid', () => {
    const entries = parseKnownHosts(
      `${name} ssh-ed25519 ${K1}\n@revoked * ssh-ed25519 ${K1}`,
      'kh',
    );
    expect(checkHostKey(entries, name, key(K1)).status).toBe('revoked');
  });

  it('ignores @cert-authority lines (host certificates are not supported)', () => {
    const entries = parseKnownHosts(`@cert-authority * ssh-ed25519 ${K1}`, 'kh');
    expect(checkHostKey(entries, name, key(K1)).status).toBe('unknown');
  });

  it('lists the key types recorded for a host, for host key algorithm preference', () => {
    const entries = parseKnownHosts(
      `${name} ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQ==\n${HASHED}\nother ecdsa-sha2-nistp256 ${K2}`,
      'kh',
    );
    expect(knownKeyTypes(entries, name)).toEqual(['ssh-rsa', 'ssh-ed25519']);
  });
});

describe('key helpers', () => {
  it('reads the type from the key blob and computes the OpenSSH fingerprint', () => {
    expect(keyTypeOf(key(K1))).toBe('ssh-ed25519');
    expect(keyTypeOf(Buffer.alloc(2))).toBe('unknown');
    expect(fingerprint(key(K1))).toBe(K1_FINGERPRINT);
  });

  it('formats a line that parses back to the same key', () => {
    const line = formatKnownHostsLine('[127.0.0.1]:2222', key(K1));
    expect(line).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${K1}`);
    expect(checkHostKey(parseKnownHosts(line, 'kh'), '[127.0.0.1]:2222', key(K1)).status).toBe(
      'known',
    );
  });
});
