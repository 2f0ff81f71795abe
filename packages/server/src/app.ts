import { isUtf8 } from 'node:buffer';
import {
  decodeOutcomeFrames,
  type JsonOutcome,
  type LeaseAnswer,
  type LeaseBody,
  MAX_JSON_OUTCOMES,
  MAX_LEASE_MS,
  MAX_LEASE_TASKS,
  OUTCOME_FRAMES_TYPE,
  type OutcomeFrame,
  type OutcomeKind,
  type RenewAnswer,
  type RenewBody,
  type ResultsAnswer,
  ROUTES,
  type SubmitAnswer,
  type TaskAnswer,
  type WireErrorBody,
  type WireErrorCode,
} from '@sheepdog/protocol';
import { isStorageError, type Storage, type StorageErrorCode } from '@sheepdog/storage';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit as bodyLimitMiddleware } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { GroupCommit } from './internal/group-commit.js';
import { tokenMatches } from './internal/token.js';
import { ServerError } from './server-error.js';

/** Largest request body accepted by default: 64 MiB. */
export const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

/** A result or error that was just stored (never sent for a duplicate post). */
export interface TaskEvent {
  /** The request the task belongs to. */
  requestId: number;
  /** The task's job index (1..N). */
  jobIndex: number;
  /** What arrived. */
  kind: OutcomeKind;
}

/** Options of {@link createApp}. */
export interface AppOptions {
  /**
   * Largest accepted request body, in bytes; larger posts get 413 and store nothing.
   * @default 67108864 (64 MiB, {@link DEFAULT_BODY_LIMIT})
   */
  bodyLimit?: number;
  /**
   * Called synchronously after each newly stored result or error, before the response is sent.
   * @default undefined
   */
  onTask?: (event: TaskEvent) => void;
}

const idParam = (name: string) =>
  z
    .string()
    .regex(/^[1-9][0-9]*$/, {
      error: (issue) => `${name} must be a positive integer, got "${String(issue.input)}"`,
    })
    .transform(Number)
    .refine(Number.isSafeInteger, { error: `${name} is larger than the largest safe integer` });

const taskParams = z.object({
  requestId: idParam('requestId'),
  jobIndex: idParam('jobIndex').optional(),
});

const leaseBody = z
  .object({
    max: z.number().int().min(1).max(MAX_LEASE_TASKS),
    leaseMs: z.number().int().min(1).max(MAX_LEASE_MS),
    withCode: z.boolean().optional(),
  })
  .strict() satisfies z.ZodType<LeaseBody>;

const renewBody = z
  .object({
    indices: z.array(z.number().int().min(1)).max(MAX_LEASE_TASKS),
    leaseMs: z.number().int().min(1).max(MAX_LEASE_MS),
  })
  .strict() satisfies z.ZodType<RenewBody>;

const jsonOutcomes = z
  .array(
    z
      .object({
        jobIndex: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
        result: z.base64().optional(),
        error: z.base64().optional(),
      })
      .strict()
      .refine((o) => (o.result === undefined) !== (o.error === undefined), {
        error: 'each item carries exactly one of "result" and "error" (base64)',
      }),
  )
  .max(MAX_JSON_OUTCOMES) satisfies z.ZodType<JsonOutcome[]>;

const resultBody = z.instanceof(Uint8Array).refine((body) => body.length > 0, {
  error: 'the result body is empty: send the serialised result as raw bytes',
});

const errorBody = z
  .instanceof(Uint8Array)
  .refine((body) => body.length > 0, {
    error: "the error body is empty: send the error's stack as UTF-8 text",
  })
  .refine((body) => isUtf8(body), { error: 'the error body is not valid UTF-8 text' });

const appOptions = z.object({
  bodyLimit: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  onTask: z
    .custom<AppOptions['onTask']>((value) => typeof value === 'function', {
      error: 'onTask must be a function',
    })
    .optional(),
});

/** Body media types that cannot be raw payload bytes: a client posting the original's forms. */
const REFUSED_MEDIA_TYPES = new Set([
  'application/x-www-form-urlencoded',
  'multipart/form-data',
  'application/json',
]);

/** Storage failures a worker can cause or should retry, and how they go over the wire. */
const STORAGE_STATUS: Partial<Record<StorageErrorCode, [ContentfulStatusCode, WireErrorCode]>> = {
  UNKNOWN_REQUEST: [404, 'UNKNOWN_REQUEST'],
  UNKNOWN_TASK: [404, 'UNKNOWN_TASK'],
  TASK_CANCELLED: [409, 'TASK_CANCELLED'],
  INVALID_ARGUMENT: [400, 'INVALID_PARAMS'],
};

/** Failures of the server's own database: a worker should retry; the operator should know. */
const STORAGE_UNAVAILABLE = new Set<StorageErrorCode>(['DATABASE_ERROR', 'CLOSED']);

/** Hono environment of the app: the validated ids that the auth middleware hands to handlers. */
export type AppEnv = { Variables: { requestId: number; jobIndex: number } };

/** Thrown inside handlers to answer with a JSON error; turned into a response by onError. */
class WireError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: WireErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The Hono app workers talk to (wire protocol v1), on top of an open {@link Storage}. Serve it
 * with `@hono/node-server`, mount it in another Hono app, or call `app.request()` in tests.
 * {@link getServer} is the usual way to run it.
 *
 * - `GET  /v1/requests/:requestId/tasks/:jobIndex` → `{ func, ns, args }` (base64); marks the
 *   task running
 * - `POST /v1/requests/:requestId/tasks/:jobIndex/result` raw bytes → `{ ok: true, duplicate }`
 * - `POST /v1/requests/:requestId/tasks/:jobIndex/error` UTF-8 text → `{ ok: true, duplicate }`
 *
 * Every call needs `Authorization: Bearer <token>` with the token of that request.
 *
 * @param storage - the open storage to serve; the app never closes it
 * @param options - body limit and the listener for stored results and errors
 * @throws {@link ServerError} `INVALID_OPTIONS`
 */
export function createApp(storage: Storage, options: AppOptions = {}): Hono<AppEnv> {
  const parsed = appOptions.safeParse(options);
  if (!parsed.success) {
    throw new ServerError(
      'INVALID_OPTIONS',
      `invalid createApp options:\n${z.prettifyError(parsed.error)}`,
    );
  }
  const maxSize = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const onTask = options.onTask;

  // A request's token hashes are only ever added to and request ids are never reused, so
  // hashes read once stay valid. A token that matches none is checked once more against the
  // database: a later process (a resume, a retry) may have added its own. Unknown ids are not
  // cached: another process may create that request later.
  const tokenHashes = new Map<number, Buffer[]>();
  const readTokenHashes = (requestId: number): Buffer[] => {
    let hexes: string[];
    try {
      hexes = storage.getTokenHashes(requestId);
    } catch (error) {
      if (isStorageError(error, 'UNKNOWN_REQUEST')) {
        throw new WireError(
          404,
          'UNKNOWN_REQUEST',
          `no request ${requestId} on this server; check the request id, and that the server uses the dbfile the request was created in`,
        );
      }
      throw error;
    }
    const hashes = hexes.map((hex) => Buffer.from(hex, 'hex'));
    tokenHashes.set(requestId, hashes);
    return hashes;
  };
  const tokenAccepted = (requestId: number, token: string): boolean => {
    const matches = (hashes: Buffer[]): boolean => hashes.some((hash) => tokenMatches(token, hash));
    const cached = tokenHashes.get(requestId);
    if (cached !== undefined && matches(cached)) return true;
    return matches(readTokenHashes(requestId));
  };

  const authorize: MiddlewareHandler<AppEnv> = async (c, next) => {
    const params = taskParams.safeParse(c.req.param());
    if (!params.success) {
      throw new WireError(
        400,
        'INVALID_PARAMS',
        params.error.issues.map((i) => i.message).join('; '),
      );
    }
    const { requestId, jobIndex = 0 } = params.data;
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer +(\S+)\s*$/i.exec(header);
    if (match?.[1] === undefined) {
      throw new WireError(
        401,
        'MISSING_TOKEN',
        `send the request's token as "Authorization: Bearer <token>"`,
      );
    }
    if (!tokenAccepted(requestId, match[1])) {
      throw new WireError(401, 'INVALID_TOKEN', `the token is not valid for request ${requestId}`);
    }
    c.set('requestId', requestId);
    c.set('jobIndex', jobIndex);
    await next();
  };

  const limit = bodyLimitMiddleware({
    maxSize,
    onError: () => {
      throw new WireError(
        413,
        'BODY_TOO_LARGE',
        `the body is larger than this server's limit of ${maxSize} bytes`,
      );
    },
  });

  const readBody = async (
    c: Context<AppEnv>,
    schema: z.ZodType<Uint8Array>,
  ): Promise<Uint8Array> => {
    const mediaType = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (mediaType !== undefined && REFUSED_MEDIA_TYPES.has(mediaType)) {
      throw new WireError(
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        `send the body as raw bytes (Content-Type: application/octet-stream), not ${mediaType}`,
      );
    }
    const body = schema.safeParse(new Uint8Array(await c.req.arrayBuffer()));
    if (!body.success) {
      throw new WireError(400, 'INVALID_BODY', body.error.issues.map((i) => i.message).join('; '));
    }
    return body.data;
  };

  /** Parses the JSON body of a `what` call against `schema`; `shape` is named in the 400. */
  const readJson = async <T>(
    c: Context<AppEnv>,
    schema: z.ZodType<T>,
    what: string,
    shape: string,
  ): Promise<T> => {
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      throw new WireError(400, 'INVALID_BODY', `the ${what} body must be JSON ${shape}`);
    }
    const body = schema.safeParse(raw);
    if (!body.success) {
      throw new WireError(400, 'INVALID_BODY', body.error.issues.map(describeIssue).join('; '));
    }
    return body.data;
  };

  const stored = (c: Context<AppEnv>, kind: TaskEvent['kind'], isNew: boolean): Response => {
    if (isNew) onTask?.({ requestId: c.get('requestId'), jobIndex: c.get('jobIndex'), kind });
    return c.json({ ok: true, duplicate: !isNew } satisfies SubmitAnswer);
  };

  const app = new Hono<AppEnv>();

  // The per-task writes of v1 (a task's start, its result or error) commit in groups.
  const group = new GroupCommit(storage);

  app.get(ROUTES.task, authorize, async (c) => {
    const requestId = c.get('requestId');
    const jobIndex = c.get('jobIndex');
    const [func, ns, args] = storage.getDetails(requestId, jobIndex);
    // Refuses a cancelled task, so its worker stops instead of running it.
    await group.run(() => storage.markRunning(requestId, jobIndex));
    return c.json({ func: base64(func), ns: base64(ns), args: base64(args) } satisfies TaskAnswer);
  });

  app.post(ROUTES.result, authorize, limit, async (c) => {
    const body = await readBody(c, resultBody);
    const requestId = c.get('requestId');
    const jobIndex = c.get('jobIndex');
    return stored(
      c,
      'result',
      await group.run(() => storage.storeResult(requestId, jobIndex, body)),
    );
  });

  app.post(ROUTES.error, authorize, limit, async (c) => {
    const body = await readBody(c, errorBody);
    const requestId = c.get('requestId');
    const jobIndex = c.get('jobIndex');
    return stored(c, 'error', await group.run(() => storage.storeError(requestId, jobIndex, body)));
  });

  // Leasing (protocol v1 addition): a worker takes a chunk of tasks at a time and posts their
  // outcomes in batches, so N tasks need N / chunk round trips instead of 2 N.
  // A lease that runs out goes back to the pool; after the request's `maxAttempts` (a field of
  // the stored request) the task is lost instead. Read once per request: it never changes.
  const maxAttempts = new Map<number, number | undefined>();
  const attemptsOf = (requestId: number): number | undefined => {
    if (maxAttempts.has(requestId)) return maxAttempts.get(requestId);
    const value = storage.getRequest(requestId).maxAttempts ?? undefined;
    maxAttempts.set(requestId, value);
    return value;
  };

  app.post(ROUTES.lease, authorize, limit, async (c) => {
    const requestId = c.get('requestId');
    const { max, leaseMs, withCode } = await readJson(c, leaseBody, 'lease', '{"max", "leaseMs"}');
    const maxAttemptsOfRequest = attemptsOf(requestId);
    const tasks = storage.leaseTasks(requestId, {
      max,
      leaseMs,
      ...(maxAttemptsOfRequest === undefined ? {} : { maxAttempts: maxAttemptsOfRequest }),
    });
    const answer: LeaseAnswer = {
      tasks: tasks.map((t) => ({ jobIndex: t.jobIndex, args: base64(t.args) })),
    };
    if (tasks.length === 0) {
      // Other workers' leases are still out: one may belong to a dead worker.
      const until = storage.nextLeaseExpiry(requestId);
      if (until !== null) answer.retryAfterMs = Math.max(0, until - Date.now()) + 1;
    }
    if (withCode === true) {
      const [func, ns] = storage.getCode(requestId);
      answer.func = base64(func);
      answer.ns = base64(ns);
    }
    return c.json(answer);
  });

  // A worker whose tasks outlast their lease renews it while they run, so a long task is not
  // handed to another worker or counted as a lost attempt.
  app.post(ROUTES.renew, authorize, limit, async (c) => {
    const requestId = c.get('requestId');
    const { indices, leaseMs } = await readJson(c, renewBody, 'renew', '{"indices", "leaseMs"}');
    const renewed = await group.run(() => storage.renewLeases(requestId, indices, leaseMs));
    return c.json({ renewed } satisfies RenewAnswer);
  });

  app.post(ROUTES.results, authorize, limit, async (c) => {
    const requestId = c.get('requestId');
    const mediaType = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    const body = new Uint8Array(await c.req.arrayBuffer());
    let outcomes: OutcomeFrame[];
    if (mediaType === 'application/json') {
      let raw: unknown;
      try {
        raw = JSON.parse(Buffer.from(body).toString('utf8'));
      } catch {
        throw new WireError(400, 'INVALID_BODY', 'the results body is not valid JSON');
      }
      const items = jsonOutcomes.safeParse(raw);
      if (!items.success) {
        throw new WireError(400, 'INVALID_BODY', items.error.issues.map(describeIssue).join('; '));
      }
      outcomes = items.data.map((item) =>
        item.result !== undefined
          ? { jobIndex: item.jobIndex, kind: 'result', payload: Buffer.from(item.result, 'base64') }
          : {
              jobIndex: item.jobIndex,
              kind: 'error',
              payload: Buffer.from(item.error ?? '', 'base64'),
            },
      );
    } else if (mediaType === OUTCOME_FRAMES_TYPE) {
      const decoded = decodeOutcomeFrames(body);
      if (typeof decoded === 'string') throw new WireError(400, 'INVALID_BODY', decoded);
      outcomes = decoded;
    } else {
      throw new WireError(
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        `send the results as ${OUTCOME_FRAMES_TYPE} frames or as application/json, not ${mediaType || 'an untyped body'}`,
      );
    }
    for (const [i, o] of outcomes.entries()) {
      if (o.jobIndex < 1) {
        throw new WireError(400, 'INVALID_BODY', `item ${i + 1}: jobIndex must be positive`);
      }
      if (o.payload.byteLength === 0) {
        throw new WireError(400, 'INVALID_BODY', `item ${i + 1} (task ${o.jobIndex}) is empty`);
      }
      if (o.kind === 'error' && !isUtf8(o.payload)) {
        throw new WireError(
          400,
          'INVALID_BODY',
          `item ${i + 1} (task ${o.jobIndex}): the error is not UTF-8 text`,
        );
      }
    }
    const statuses = storage.storeOutcomes(requestId, outcomes);
    if (onTask !== undefined) {
      statuses.forEach((status, i) => {
        const o = outcomes[i];
        if (status === 'stored' && o !== undefined) {
          onTask({ requestId, jobIndex: o.jobIndex, kind: o.kind });
        }
      });
    }
    return c.json({ ok: true, statuses } satisfies ResultsAnswer);
  });

  app.notFound((c) =>
    fail(
      c,
      404,
      'NOT_FOUND',
      `no endpoint ${c.req.method} ${c.req.path}; see the wire protocol in the @sheepdog/server README`,
    ),
  );

  app.onError((error, c) => {
    if (error instanceof WireError) return fail(c, error.status, error.code, error.message);
    if (isStorageError(error)) {
      const mapped = STORAGE_STATUS[error.code];
      // Storage messages are written for the caller, and carry no package prefix.
      if (mapped !== undefined) return fail(c, mapped[0], mapped[1], error.message);
      if (STORAGE_UNAVAILABLE.has(error.code)) {
        warn(error);
        return fail(
          c,
          503,
          'STORAGE_UNAVAILABLE',
          'the server database is unavailable; retry later',
        );
      }
    }
    // Details stay in the server's log: they may name files of the machine it runs on.
    warn(error);
    return fail(c, 500, 'INTERNAL', 'internal server error; the server log has the details');
  });

  return app;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}

function fail(
  c: Context,
  status: ContentfulStatusCode,
  code: WireErrorCode,
  message: string,
): Response {
  if (status === 401) c.header('WWW-Authenticate', 'Bearer realm="sheepdog"');
  return c.json({ error: { code, message } } satisfies WireErrorBody, status);
}

function warn(error: Error): void {
  process.emitWarning(
    `[sheepdog] [server] a worker request failed: ${error.stack ?? error.message}`,
  );
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
