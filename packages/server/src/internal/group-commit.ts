import type { Storage } from '@sheepdog/storage';

interface Pending {
  readonly write: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Commits the storage writes that arrive during one turn of the event loop together. With many
 * workers, a commit per call (and a write of each touched page per commit) is most of what a
 * task costs the server; grouped, each page is written once per turn. Every call is answered
 * only once its write is committed, so a worker never hears "stored" for something that is not.
 */
export class GroupCommit {
  readonly #storage: Storage;
  #queue: Pending[] = [];

  constructor(storage: Storage) {
    this.#storage = storage;
  }

  /**
   * Runs `write` (synchronous Storage calls) in the next group's transaction. Resolves with what
   * it returned once committed; rejects with what it threw (its own writes undone, the group's
   * others kept), or with the commit's error.
   */
  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#queue.length === 0) setImmediate(() => this.#flush());
      this.#queue.push({ write, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  #flush(): void {
    const group = this.#queue;
    this.#queue = [];
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.#storage.transaction(() => {
        for (const { write } of group) {
          try {
            // A write that throws leaves the transaction as it found it: Storage's own
            // transactions are savepoints here, and a single statement undoes itself.
            outcomes.push({ ok: true, value: write() });
          } catch (error) {
            outcomes.push({ ok: false, value: error });
          }
        }
      });
    } catch (error) {
      for (const pending of group) pending.reject(error);
      return;
    }
    group.forEach((pending, i) => {
      const outcome = outcomes[i] as { ok: boolean; value: unknown };
      if (outcome.ok) pending.resolve(outcome.value);
      else pending.reject(outcome.value);
    });
  }
}
