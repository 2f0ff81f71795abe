/**
 * Payload conversions at the better-sqlite3 boundary, both without copying.
 * @module
 */

/** better-sqlite3 binds only Buffers as blobs; wrap without copying. */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** A plain Uint8Array view of the Buffer better-sqlite3 returned, without copying. */
export function toBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** {@link toBytes}, keeping `null` (no payload stored). */
export function toBytesOrNull(buffer: Buffer | null): Uint8Array | null {
  return buffer === null ? null : toBytes(buffer);
}
