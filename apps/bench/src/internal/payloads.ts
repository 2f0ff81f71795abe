// Payloads in the formats of the contracts (v8 structured clone). The args come from
// @sheepdog/serialize's encodeArgs, as core encodes them; the rest is written with node:v8.
import { serialize } from 'node:v8';
import { encodeArgs } from '@sheepdog/serialize';

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
 * The args payloads of tasks 1..n, `[i]` each, encoded one at a time as they are consumed, by
 * core's `encodeArgs` as while `map` streams them into storage.
 */
export function* trivialArgs(n: number): Generator<Uint8Array> {
  for (let i = 1; i <= n; i++) yield encodeArgs(i);
}

/** The same payloads from `v8.serialize`, the encoder `encodeArgs` falls back on: a baseline. */
export function* trivialArgsV8(n: number): Generator<Uint8Array> {
  for (let i = 1; i <= n; i++) yield serialize([i]);
}

/** The result payload a trivial task posts for job index `i`. */
export function trivialResult(i: number): Uint8Array {
  return serialize(i);
}
