import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import { createAuthAttempts } from './auth.js';

const dir = mkdtempSync(join(tmpdir(), 'deployer-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keyFile(name: string, passphrase?: string): string {
  const pair = ssh2.utils.generateKeyPairSync(
    'ed25519',
    passphrase === undefined ? {} : { passphrase, cipher: 'aes256-ctr', rounds: 4 },
  );
  const file = join(dir, name);
  writeFileSync(file, pair.private, { mode: 0o600 });
  return file;
}

/** Drives the handler like ssh2 does and collects what it offers, in order. */
function offers(
  attempts: ReturnType<typeof createAuthAttempts>,
  methodsLeft: string[] | null = null,
): string[] {
  const offered: string[] = [];
  for (let i = 0; i < 10; i++) {
    let next: unknown;
    attempts.handler(i === 0 ? null : methodsLeft, false, (method) => {
      next = method;
    });
    if (next === false) return offered;
    const method = next as { type: string; agent?: string };
    offered.push(method.type === 'agent' ? `agent:${method.agent}` : method.type);
  }
  throw new Error('handler never ended');
}

describe('createAuthAttempts', () => {
  it('offers the agent first, then keys in order, skipping missing and duplicate files', () => {
    const a = keyFile('a');
    const b = keyFile('b');
    const attempts = createAuthAttempts({
      username: 'u',
      agent: '/run/agent.sock',
      keys: [
        { path: a, explicit: true },
        { path: join(dir, 'missing-default'), explicit: false },
        { path: join(dir, 'missing-explicit'), explicit: true },
        { path: a, explicit: false },
        { path: b, explicit: false },
      ],
    });
    expect(offers(attempts, ['publickey'])).toEqual([
      'agent:/run/agent.sock',
      'publickey',
      'publickey',
    ]);
    expect(attempts.tried).toEqual([
      'agent /run/agent.sock',
      `publickey ${a} (ssh-ed25519)`,
      `publickey ${b} (ssh-ed25519)`,
    ]);
    expect(attempts.notes).toEqual([`key file ${join(dir, 'missing-explicit')} does not exist`]);
  });

  it('skips a passphrase-protected key without passphrase, with a note; uses it with one', () => {
    const locked = keyFile('locked', 'secret');
    const without = createAuthAttempts({
      username: 'u',
      agent: undefined,
      keys: [{ path: locked, explicit: true }],
    });
    expect(offers(without)).toEqual([]);
    expect(without.notes[0]).toMatch(/passphrase-protected.*ssh-add/);
    const withIt = createAuthAttempts({
      username: 'u',
      agent: undefined,
      keys: [{ path: locked, passphrase: 'secret', explicit: true }],
    });
    expect(offers(withIt)).toEqual(['publickey']);
  });

  it('stops when the server does not accept public keys', () => {
    const attempts = createAuthAttempts({
      username: 'u',
      agent: '/a',
      keys: [{ path: keyFile('c'), explicit: true }],
    });
    expect(offers(attempts, ['password'])).toEqual(['agent:/a']);
    expect(attempts.notes).toEqual(['the server accepts only: password']);
  });
});
