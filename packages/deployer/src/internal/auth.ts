import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type AnyAuthMethod, type ParsedKey } from 'ssh2';

// ssh2 is CommonJS and builds `utils` with a spread, which Node's ESM named exports cannot see.
const { parseKey } = ssh2.utils;

/** One key file to offer, and whether the caller named it (then a missing file is worth a note). */
export interface KeyCandidate {
  path: string;
  passphrase?: string | undefined;
  explicit: boolean;
}

/** What to try, in OpenSSH's order: the agent, then the named keys, then the default keys. */
export interface AuthPlan {
  username: string;
  /** Agent socket path, or undefined for no agent. */
  agent: string | undefined;
  keys: KeyCandidate[];
}

/** OpenSSH's default identities that ssh2 can use, in OpenSSH's order. */
export function defaultKeyFiles(): string[] {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((name) => join(homedir(), '.ssh', name));
}

/**
 * ssh2's `authHandler` as it really behaves: `methodsLeft` is null before the first attempt, and
 * `next(false)` ends authentication (@types/ssh2 allows neither).
 */
export type AuthHandler = (
  methodsLeft: string[] | null,
  partialSuccess: boolean,
  next: (method: AnyAuthMethod | false) => void,
) => void;

/** The handler for ssh2's `authHandler`, plus a record of what was tried for error messages. */
export interface AuthAttempts {
  handler: AuthHandler;
  /** Methods offered to the server, e.g. `agent /run/ssh-agent.sock`, `publickey ~/.ssh/id_rsa`. */
  tried: string[];
  /** Why candidates were skipped (passphrase, unreadable, not found, agent unreachable). */
  notes: string[];
}

function loadKey(candidate: KeyCandidate, notes: string[]): ParsedKey | undefined {
  const { path } = candidate;
  if (!existsSync(path)) {
    if (candidate.explicit) notes.push(`key file ${path} does not exist`);
    return undefined;
  }
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (cause) {
    notes.push(`cannot read key file ${path}: ${cause instanceof Error ? cause.message : cause}`);
    return undefined;
  }
  const parsed = parseKey(data, candidate.passphrase);
  if (parsed instanceof Error) {
    if (/passphrase|encrypted/i.test(parsed.message) && candidate.passphrase === undefined) {
      notes.push(
        `skipped ${path}: it is passphrase-protected and no passphrase was given (load it into ssh-agent with \`ssh-add ${path}\`, or pass \`passphrase\`)`,
      );
    } else {
      notes.push(`skipped ${path}: ${parsed.message}`);
    }
    return undefined;
  }
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (key === undefined || !key.isPrivateKey()) {
    notes.push(`skipped ${path}: not a private key`);
    return undefined;
  }
  return key;
}

/**
 * Builds an ssh2 `authHandler` that offers the agent, then each key, one per server round trip,
 * and stops early when the server does not accept public keys at all.
 */
export function createAuthAttempts(plan: AuthPlan): AuthAttempts {
  const tried: string[] = [];
  const notes: string[] = [];
  const queue: Array<{ kind: 'agent'; path: string } | { kind: 'key'; key: KeyCandidate }> = [];
  if (plan.agent !== undefined) queue.push({ kind: 'agent', path: plan.agent });
  const seen = new Set<string>();
  for (const key of plan.keys) {
    if (seen.has(key.path)) continue;
    seen.add(key.path);
    queue.push({ kind: 'key', key });
  }

  const nextMethod = (): AnyAuthMethod | false => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      if (item.kind === 'agent') {
        tried.push(`agent ${item.path}`);
        return { type: 'agent', username: plan.username, agent: item.path };
      }
      const key = loadKey(item.key, notes);
      if (key === undefined) continue;
      tried.push(`publickey ${item.key.path} (${key.type})`);
      return { type: 'publickey', username: plan.username, key };
    }
    return false;
  };

  const handler: AuthHandler = (methodsLeft, _partialSuccess, next) => {
    if (methodsLeft && !methodsLeft.includes('publickey')) {
      notes.push(`the server accepts only: ${methodsLeft.join(', ') || 'nothing'}`);
      next(false);
      return;
    }
    next(nextMethod());
  };
  return { handler, tried, notes };
}
