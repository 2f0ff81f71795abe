import * as http from 'node:http';
import * as https from 'node:https';
import { WorkerError } from '../error.js';

/** How the worker talks to the server; every field has a default and an environment variable. */
export interface HttpOptions {
  /**
   * Retries after the first attempt for a transient failure (refused/reset connection, timeout,
   * 5xx, 408, 429). Env `SHEEPDOG_HTTP_RETRIES`.
   * @default 11 (12 tries, about a minute in all)
   */
  httpRetries?: number;
  /**
   * Delay before the first retry; it doubles each time up to `httpRetryMaxMs`, and each delay is
   * jittered by ±25 % so that many tasks do not retry in step. Env `SHEEPDOG_HTTP_RETRY_BASE_MS`.
   * @default 500
   */
  httpRetryBaseMs?: number;
  /** Longest delay between two tries. Env `SHEEPDOG_HTTP_RETRY_MAX_MS`. @default 8000 */
  httpRetryMaxMs?: number;
  /**
   * A try fails when the connection is silent this long (0: never). Env
   * `SHEEPDOG_HTTP_TIMEOUT_MS`.
   * @default 30000
   */
  httpTimeoutMs?: number;
}

/** {@link HttpOptions} with every default applied. */
export type ResolvedHttpOptions = Required<HttpOptions>;

const DEFAULTS: ResolvedHttpOptions = {
  httpRetries: 11,
  httpRetryBaseMs: 500,
  httpRetryMaxMs: 8000,
  httpTimeoutMs: 30_000,
};

const ENV_NAMES: Record<keyof HttpOptions, string> = {
  httpRetries: 'SHEEPDOG_HTTP_RETRIES',
  httpRetryBaseMs: 'SHEEPDOG_HTTP_RETRY_BASE_MS',
  httpRetryMaxMs: 'SHEEPDOG_HTTP_RETRY_MAX_MS',
  httpTimeoutMs: 'SHEEPDOG_HTTP_TIMEOUT_MS',
};

/**
 * Applies, per field: the explicit option, else the environment variable, else the default.
 * @throws {WorkerError} `BAD_OPTIONS` for a negative or non-numeric value.
 */
export function resolveHttpOptions(
  options: HttpOptions,
  env: NodeJS.ProcessEnv,
): ResolvedHttpOptions {
  const resolved = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof HttpOptions)[]) {
    const raw = options[key] ?? env[ENV_NAMES[key]];
    if (raw === undefined || raw === '') continue;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new WorkerError(
        'BAD_OPTIONS',
        `${key} (env ${ENV_NAMES[key]}) must be an integer >= 0, got ${JSON.stringify(raw)}.`,
      );
    }
    resolved[key] = value;
  }
  return resolved;
}

interface Response {
  status: number;
  body: Buffer;
}

/** Per-call extras of {@link request}: the body's media type and a connection pool. */
export interface RequestExtras {
  /** @default 'application/octet-stream' */
  readonly contentType?: string;
  /** A keep-alive agent, so a worker making many calls reuses one connection. */
  readonly agent?: http.Agent;
}

function send(
  url: URL,
  method: 'GET' | 'POST',
  token: string,
  body: Uint8Array | undefined,
  timeoutMs: number,
  extras: RequestExtras,
): Promise<Response> {
  const headers: Record<string, string | number> = {
    authorization: `Bearer ${token}`,
    accept: 'application/json',
    'user-agent': 'sheepdog-worker',
  };
  if (body !== undefined) {
    headers['content-type'] = extras.contentType ?? 'application/octet-stream';
    headers['content-length'] = body.byteLength;
  }
  const transport = url.protocol === 'https:' ? https : http;
  // Created outside the promise: a synchronous throw here (a bad header value, say) is a setup
  // problem that retrying cannot fix.
  const request = transport.request(url, {
    method,
    headers,
    ...(extras.agent === undefined ? {} : { agent: extras.agent }),
  });
  return new Promise((resolve, reject) => {
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }),
      );
    });
    request.setTimeout(timeoutMs, () => {
      const error = new Error(`no answer within ${timeoutMs} ms`) as NodeJS.ErrnoException;
      error.code = 'ETIMEDOUT';
      request.destroy(error);
    });
    request.on('error', reject);
    request.end(body);
  });
}

function isRetriableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** The server's own explanation from a `{ error: { code, message } }` body, if there is one. */
function serverMessage(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as {
      error?: { code?: string; message?: string };
    };
    if (parsed.error?.message) return `${parsed.error.code ?? 'error'}: ${parsed.error.message}`;
  } catch {}
  return body.toString('utf8').slice(0, 200);
}

function describe(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e.code ? `${e.code} (${e.message})` : String(e.message ?? error);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends one request, retrying transient failures with exponential backoff and jitter, and
 * returns the 2xx body.
 *
 * @param log - Where each retry is announced, so the scheduler's log shows why a task was slow.
 * @throws {WorkerError} `HTTP_STATUS` for a status retrying cannot fix (other 4xx), at once;
 *   `HTTP_FAILED` when every try failed.
 */
export async function request(
  url: URL,
  method: 'GET' | 'POST',
  token: string,
  body: Uint8Array | undefined,
  options: ResolvedHttpOptions,
  log: (line: string) => void,
  extras: RequestExtras = {},
): Promise<Buffer> {
  const what = `${method} ${url.href}`;
  const started = Date.now();
  let lastProblem = '';
  let lastCause: unknown;
  for (let attempt = 0; ; attempt++) {
    let pending: Promise<Response>;
    try {
      pending = send(url, method, token, body, options.httpTimeoutMs, extras);
    } catch (error) {
      throw new WorkerError('BAD_OPTIONS', `cannot send ${what}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    try {
      const response = await pending;
      if (response.status >= 200 && response.status < 300) return response.body;
      const detail = `HTTP ${response.status} ${serverMessage(response.body)}`;
      if (!isRetriableStatus(response.status)) {
        throw new WorkerError(
          'HTTP_STATUS',
          `${what} was refused: ${detail}. Retrying cannot fix this; check the job file's URL, token and request id.`,
          { status: response.status },
        );
      }
      lastProblem = detail;
      lastCause = undefined;
    } catch (error) {
      if (error instanceof WorkerError) throw error;
      lastProblem = describe(error);
      lastCause = error;
    }
    if (attempt >= options.httpRetries) break;
    const backoff = Math.min(options.httpRetryMaxMs, options.httpRetryBaseMs * 2 ** attempt);
    const delay = Math.round(backoff * (0.75 + Math.random() * 0.5));
    log(
      `[sheepdog] [worker] ${what} failed: ${lastProblem}; retry ${attempt + 1}/${options.httpRetries} in ${(delay / 1000).toFixed(1)} s`,
    );
    await sleep(delay);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  throw new WorkerError(
    'HTTP_FAILED',
    `${what} failed ${options.httpRetries + 1} times over ${seconds} s; last: ${lastProblem}. Is the server running and reachable from this node? (retries: httpRetries / SHEEPDOG_HTTP_RETRIES)`,
    { cause: lastCause },
  );
}
