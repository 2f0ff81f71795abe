import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 32 random bytes: guessing a token is out of reach, and it fits in a header. */
const TOKEN_BYTES = 32;

/** A fresh worker token: 32 random bytes, base64url (43 characters). */
export function mintToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** SHA-256 of a token as 64 lowercase hex digits: what the database keeps instead of it. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Compares a presented token with a stored hash in constant time. Both sides are SHA-256
 * digests, so the lengths always match and the time does not depend on the token's content.
 */
export function tokenMatches(presented: string, storedHash: Buffer): boolean {
  const digest = createHash('sha256').update(presented, 'utf8').digest();
  return storedHash.length === digest.length && timingSafeEqual(digest, storedHash);
}
