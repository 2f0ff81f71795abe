import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseProxyJump, readSshConfig, resolveHost } from './ssh-config.js';

const dir = mkdtempSync(join(tmpdir(), 'deployer-ssh-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(text: string): string {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, text);
  return file;
}

const CONFIG = `
Host head
  HostName head.example.org
  User alice
  Port 2200
  IdentityFile ~/.ssh/cluster_ed25519
  IdentityFile %d/.ssh/%r@%h
  UserKnownHostsFile ~/.ssh/known_hosts.cluster
  ConnectTimeout 7

Host inner
  HostName 10.1.2.3
  ProxyJump bob@bastion.example.org:2022,head

Host piped
  ProxyCommand ssh -W %h:%p -p 2222 gateway # comment

Host nojump
  ProxyJump none

Host *.example.org
  User fallback
  IdentityFile ~/.ssh/id_default

Host *
  ProxyJump should-not-apply-to-nojump
  ServerAliveInterval 30
`;

describe('resolveHost', () => {
  const config = readSshConfig(configFile(CONFIG));

  it('applies HostName, User, Port, IdentityFile (tokens and ~ expanded), first value wins', () => {
    const head = resolveHost(config, 'head');
    expect(head).toMatchObject({
      alias: 'head',
      hostname: 'head.example.org',
      user: 'alice',
      port: 2200,
      userKnownHostsFiles: [join(homedir(), '.ssh/known_hosts.cluster')],
      connectTimeoutMs: 7000,
      proxyCommand: undefined,
    });
    expect(head.identityFiles).toEqual([
      join(homedir(), '.ssh/cluster_ed25519'),
      `${homedir()}/.ssh/alice@head.example.org`,
    ]);
    // `Host *` comes last, so its ProxyJump applies to head too, as in OpenSSH.
    expect(head.proxyJump).toBe('should-not-apply-to-nojump');
  });

  it('matches Host patterns against the name given, not HostName (as OpenSSH does)', () => {
    const direct = resolveHost(config, 'head.example.org');
    expect(direct.user).toBe('fallback');
    expect(direct.identityFiles).toEqual([join(homedir(), '.ssh/id_default')]);
  });

  it('lets explicit options win over the config', () => {
    const head = resolveHost(config, 'head', { user: 'carol', port: 22 });
    expect(head.user).toBe('carol');
    expect(head.port).toBe(22);
    expect(head.hostname).toBe('head.example.org');
  });

  it('keeps ProxyJump lists and treats `none` as no jump', () => {
    expect(resolveHost(config, 'inner').proxyJump).toBe('bob@bastion.example.org:2022,head');
    expect(resolveHost(config, 'nojump').proxyJump).toBeUndefined();
  });

  it('expands %h and %p in ProxyCommand', () => {
    const piped = resolveHost(config, 'piped');
    expect(piped.proxyCommand).toBe('ssh -W piped:22 -p 2222 gateway');
  });

  it('falls back to the alias, port 22 and the local user for unknown hosts', () => {
    const empty = readSshConfig(false);
    const plain = resolveHost(empty, 'somewhere');
    expect(plain).toMatchObject({ hostname: 'somewhere', port: 22, identityFiles: [] });
    expect(plain.user.length).toBeGreaterThan(0);
  });

  it('rejects a missing explicit config file and a bad port with INVALID_CONFIG', () => {
    expect(() => readSshConfig(join(dir, 'missing'))).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
    const bad = readSshConfig(configFile('Host x\n  Port banana\n'));
    expect(() => resolveHost(bad, 'x')).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
  });
});

describe('parseProxyJump', () => {
  it('splits hops with optional user, port, ssh:// and bracketed IPv6', () => {
    expect(parseProxyJump('a,bob@b:2022,ssh://c@[::1]:2200,[fe80::1]')).toEqual([
      { host: 'a', user: undefined, port: undefined },
      { host: 'b', user: 'bob', port: 2022 },
      { host: '::1', user: 'c', port: 2200 },
      { host: 'fe80::1', user: undefined, port: undefined },
    ]);
  });

  it('rejects a malformed hop', () => {
    expect(() => parseProxyJump('a,:22')).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
  });
});
