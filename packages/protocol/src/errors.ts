/**
 * The shape every Sheepdog part's error shares (`ServerError`, `WorkerError`, `SheepdogError`,
 * …): a stable `code` from the part's own list, an `origin` naming the part, and a message that
 * carries no prefix. Printers put `[sheepdog] [origin]` before the message; a stack, and the
 * error text a worker posts, start with the class name. A part's class sets `name` and `origin`
 * as fields and adds what else it carries. `@sheepdog/storage` and
 * `@sheepdog/deployer`, which depend on no other Sheepdog package, keep the same shape on their
 * own.
 */
export abstract class PartError<Code extends string> extends Error {
  /** Why it failed, from the part's list of codes. */
  readonly code: Code;
  /** Which part of Sheepdog raised it (`server`, `worker`, `core`, …). */
  abstract readonly origin: string;
  /** The class name (`ServerError`, …), which {@link errorGuard}'s guards test. */
  abstract override readonly name: string;

  /**
   * @param code - why it failed
   * @param message - what happened and what to do, without a prefix
   * @param options - `cause` when wrapping another error
   */
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(
      message,
      options !== undefined && 'cause' in options ? { cause: options.cause } : undefined,
    );
    this.code = code;
  }
}

/**
 * A part's `isXError(error, code?)` guard: true for an error of that class name with one of
 * `codes` (or exactly `code`, when given). It tests name and code rather than `instanceof`, so
 * an error from another copy of the package counts too.
 */
export function errorGuard<E extends Error & { readonly code: C }, C extends string>(
  name: string,
  codes: readonly C[],
): (error: unknown, code?: C) => error is E {
  return (error: unknown, code?: C): error is E => {
    if (!(error instanceof Error) || error.name !== name) return false;
    const own = (error as { code?: unknown }).code;
    return code === undefined ? (codes as readonly unknown[]).includes(own) : own === code;
  };
}
