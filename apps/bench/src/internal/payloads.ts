// Payloads in the formats of the contracts (v8 structured clone), written here with node:v8 so
// the bench drives storage and the wire protocol exactly as core does, without core's encoder.
import { serialize } from 'node:v8';

/** The function payload of `(x) => x`: what a trivial task runs. */
export const IDENTITY_FUNC: Uint8Array = serialize({
  kind: 'source',
  source: '(x) => x',
  name: 'identity',
  isAsync: false,
});

/** An empty namespace payload. */
export const EMPTY_NS: Uint8Array = serialize({ values: {}, functions: {} });

/**
 * The args payloads of tasks 1..n, `[i]` each, encoded one at a time as they are consumed, like
 * core's `encodeArgs` does while `newRequest` streams them into storage.
 */
export function* trivialArgs(n: number): Generator<Uint8Array> {
  for (let i = 1; i <= n; i++) yield serialize([i]);
}

/** The result payload a trivial task posts for job index `i`. */
export function trivialResult(i: number): Uint8Array {
  return serialize(i);
}
