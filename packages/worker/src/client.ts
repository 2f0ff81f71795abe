import { createRequire } from 'node:module';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { routeUrl, type SubmitAnswer, type TaskAnswer } from '@sheepdog/protocol';
import { buildFunction, decodeValue, encodeValue, SerializeError } from '@sheepdog/serialize';
import { WorkerError } from './error.js';
import {
  type HttpOptions,
  type ResolvedHttpOptions,
  request,
  resolveHttpOptions,
} from './internal/http.js';

/** Options of {@link Client}. */
export interface ClientOptions extends HttpOptions {
  /**
   * Print the result (to stdout) or the error (to stderr) after running, so the scheduler's log
   * keeps a copy.
   * @default true
   */
  print?: boolean;
  /**
   * Where `SHEEPDOG_HTTP_*` settings are read from.
   * @default process.env
   */
  env?: NodeJS.ProcessEnv;
}

/** What one task needs, as fetched from the server: the three payloads, as bytes. */
export interface TaskDetails {
  func: Uint8Array;
  ns: Uint8Array;
  args: Uint8Array;
}

/** How running the task went. */
export type TaskOutcome =
  | {
      kind: 'result';
      /** The awaited return value (a generator's items, collected into an array). */
      value: unknown;
      /** The result payload that is posted. */
      payload: Uint8Array;
    }
  | {
      kind: 'error';
      /** What was thrown (or rejected with). */
      error: unknown;
      /** The error payload that is posted: the stack, or `String(thrown)` for a non-Error. */
      text: string;
    };

/** The error payload for a thrown value: its stack when it has one, else `String(thrown)`. */
export function errorText(thrown: unknown): string {
  if (
    thrown instanceof Error ||
    (typeof thrown === 'object' && thrown !== null && 'stack' in thrown)
  ) {
    const { stack, name, message } = thrown as Error;
    if (typeof stack === 'string' && stack !== '') return stack;
    return `${name}: ${message}`;
  }
  try {
    return String(thrown);
  } catch {
    // e.g. Object.create(null), which has no toString
    return inspect(thrown);
  }
}

/** Awaits a task's return value; a generator's items are collected into an array. */
export async function settle(value: unknown): Promise<unknown> {
  const awaited = await value;
  // A generator object cannot be cloned; shipping its items is what a caller of a generator wants.
  const tag = Object.prototype.toString.call(awaited);
  if (tag === '[object Generator]') return Array.from(awaited as Iterable<unknown>);
  if (tag === '[object AsyncGenerator]') {
    const items: unknown[] = [];
    for await (const item of awaited as AsyncIterable<unknown>) items.push(item);
    return items;
  }
  return awaited;
}

function decodeBase64(field: unknown, name: string): Uint8Array {
  if (typeof field !== 'string') {
    throw new WorkerError(
      'BAD_RESPONSE',
      `the task details have no base64 "${name}" field. Is the URL a Sheepdog server of a compatible version?`,
    );
  }
  return Buffer.from(field, 'base64');
}

/**
 * Runs one task: fetches its function, namespace and arguments from the server, runs it, and
 * posts the result (or the error with its stack). Mirrors the original Sheepdog's client.
 */
export class Client {
  /** The task's details, once {@link Client.getDetails} has fetched them. */
  details: TaskDetails | undefined;
  /** How the task went, once {@link Client.run} has run it. */
  outcome: TaskOutcome | undefined;

  private readonly base: URL;
  private readonly http: ResolvedHttpOptions;
  private readonly print: boolean;

  /**
   * @param url - The server's base URL, e.g. `http://head:8080/` (a path prefix is kept).
   * @param token - The request's secret token, sent as `Authorization: Bearer <token>`.
   * @param requestId - The request this task belongs to.
   * @param jobIndex - The task's index within the request, from 1.
   * @param options - Retry settings and printing.
   * @throws {WorkerError} `BAD_OPTIONS` for an unusable URL, id or retry setting.
   */
  constructor(
    readonly url: string,
    readonly token: string,
    readonly requestId: number,
    readonly jobIndex: number,
    options: ClientOptions = {},
  ) {
    try {
      this.base = new URL(url.endsWith('/') ? url : `${url}/`);
    } catch (error) {
      throw new WorkerError('BAD_OPTIONS', `the server URL ${JSON.stringify(url)} is not a URL.`, {
        cause: error,
      });
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new WorkerError('BAD_OPTIONS', `the server URL must be http: or https:, got ${url}.`);
    }
    // A bearer token must be a valid header value; the server's tokens are base64url.
    if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) {
      throw new WorkerError(
        'BAD_OPTIONS',
        'the token must be a non-empty string of printable ASCII.',
      );
    }
    for (const [name, value] of [
      ['requestId', requestId],
      ['jobIndex', jobIndex],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new WorkerError('BAD_OPTIONS', `${name} must be a positive integer, got ${value}.`);
      }
    }
    this.http = resolveHttpOptions(options, options.env ?? process.env);
    this.print = options.print ?? true;
  }

  private taskUrl(route: 'task' | 'result' | 'error'): URL {
    return routeUrl(this.base, route, { requestId: this.requestId, jobIndex: this.jobIndex });
  }

  private log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };

  /**
   * Fetches the task's function, namespace and arguments (retrying transient failures).
   * @throws {WorkerError} `HTTP_FAILED`, `HTTP_STATUS` or `BAD_RESPONSE`.
   */
  async getDetails(): Promise<TaskDetails> {
    const url = this.taskUrl('task');
    const body = await request(url, 'GET', this.token, undefined, this.http, this.log);
    let parsed: Partial<Record<keyof TaskAnswer, unknown>>;
    try {
      parsed = JSON.parse(body.toString('utf8')) as Partial<Record<keyof TaskAnswer, unknown>>;
    } catch (error) {
      throw new WorkerError(
        'BAD_RESPONSE',
        `the task details are not JSON (${body.byteLength} bytes). Is the URL a Sheepdog server?`,
        { cause: error },
      );
    }
    this.details = {
      func: decodeBase64(parsed.func, 'func'),
      ns: decodeBase64(parsed.ns, 'ns'),
      args: decodeBase64(parsed.args, 'args'),
    };
    return this.details;
  }

  /**
   * Builds the function and calls it with the task's arguments, awaiting a returned promise (and
   * collecting a generator's items). Anything that goes wrong, from an import that fails to a
   * result that cannot be serialised, becomes an error outcome to post; this never throws for it.
   * @throws {WorkerError} `OUT_OF_ORDER` before {@link Client.getDetails}.
   */
  async run(): Promise<TaskOutcome> {
    const details = this.details;
    if (details === undefined) {
      throw new WorkerError('OUT_OF_ORDER', 'run() needs getDetails() first (or call go()).');
    }
    try {
      const f = await buildFunction(details.func, details.ns, {
        require: createRequire(join(process.cwd(), 'sheepdog-task.js')),
      });
      const args = decodeValue(details.args);
      if (!Array.isArray(args)) {
        throw new SerializeError(
          'BAD_PAYLOAD',
          'the arguments payload is not an array of positional arguments.',
        );
      }
      const value = await settle(f(...args));
      this.outcome = { kind: 'result', value, payload: encodeValue(value) };
    } catch (error) {
      this.outcome = { kind: 'error', error, text: errorText(error) };
    }
    if (this.print) this.printOutcome(this.outcome);
    return this.outcome;
  }

  private printOutcome(outcome: TaskOutcome): void {
    const head = `[sheepdog] request ${this.requestId} task ${this.jobIndex}`;
    if (outcome.kind === 'result') {
      const shown = inspect(outcome.value, {
        depth: 6,
        maxArrayLength: 100,
        maxStringLength: 10_000,
        breakLength: 100,
      });
      process.stdout.write(`${head} result:\n${shown}\n`);
    } else {
      process.stderr.write(`${head} failed:\n${outcome.text}\n`);
    }
  }

  /**
   * Posts the result payload, or the error text, to the server (retrying transient failures).
   * @throws {WorkerError} `OUT_OF_ORDER` before {@link Client.run}; `HTTP_FAILED`, `HTTP_STATUS`.
   */
  async submitResults(): Promise<SubmitAnswer> {
    const outcome = this.outcome;
    if (outcome === undefined) {
      throw new WorkerError('OUT_OF_ORDER', 'submitResults() needs run() first (or call go()).');
    }
    return outcome.kind === 'result'
      ? this.post('result', outcome.payload)
      : this.submitError(outcome.text);
  }

  /**
   * Posts an error text for this task without running it, e.g. when the task's process died.
   * @throws {WorkerError} `HTTP_FAILED`, `HTTP_STATUS`.
   */
  submitError(text: string): Promise<SubmitAnswer> {
    return this.post('error', Buffer.from(text, 'utf8'));
  }

  private async post(route: 'result' | 'error', payload: Uint8Array): Promise<SubmitAnswer> {
    const body = await request(
      this.taskUrl(route),
      'POST',
      this.token,
      payload,
      this.http,
      this.log,
    );
    try {
      const parsed = JSON.parse(body.toString('utf8')) as Partial<SubmitAnswer>;
      return { ok: parsed.ok === true, duplicate: parsed.duplicate === true };
    } catch (error) {
      throw new WorkerError(
        'BAD_RESPONSE',
        'the server accepted the post but did not answer JSON.',
        {
          cause: error,
        },
      );
    }
  }

  /**
   * {@link Client.getDetails}, {@link Client.run}, {@link Client.submitResults}: the whole task.
   * @throws {WorkerError} when the server cannot be reached or refuses; never for the task's own
   *   failure, which is posted.
   */
  async go(): Promise<TaskOutcome> {
    await this.getDetails();
    const outcome = await this.run();
    await this.submitResults();
    return outcome;
  }
}
