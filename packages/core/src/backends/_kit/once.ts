/**
 * A lookup made once and kept, as long as it succeeds: the first call starts it, concurrent and
 * later calls share its answer. One that fails (say a dropped connection) is not kept, so the
 * next call asks again instead of failing for ever.
 *
 * @param lookup - what to ask
 * @returns a function that answers from the kept lookup, or starts a new one
 */
export function keptOnSuccess<T>(lookup: () => Promise<T>): () => Promise<T> {
  let kept: Promise<T> | undefined;
  return () => {
    if (kept === undefined) {
      const asking = lookup();
      kept = asking;
      asking.catch(() => {
        if (kept === asking) kept = undefined;
      });
    }
    return kept;
  };
}
