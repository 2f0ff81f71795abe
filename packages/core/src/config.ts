import { z } from 'zod';
import type { Backend } from './backend.js';
import { type ConfigIssue, SheepdogError } from './errors.js';

/** Names of the built-in backends. */
export const builtinBackends = ['local', 'gridengine', 'slurm'] as const;

/** A built-in backend's name. */
export type BuiltinBackendName = (typeof builtinBackends)[number];

function isBackend(value: unknown): value is Backend {
  if (typeof value !== 'object' || value === null) return false;
  const b = value as Record<string, unknown>;
  return (
    typeof b.name === 'string' &&
    typeof b.submit === 'function' &&
    typeof b.status === 'function' &&
    typeof b.cancel === 'function'
  );
}

const port = z.number().int().min(1).max(65535);

const configSchema = z
  .object({
    host: z.string().min(1).optional(),
    sshPort: port.optional(),
    sshUser: z.string().min(1).optional(),
    sshKeyfile: z.string().min(1).optional(),
    sshKnownHostsFile: z.string().min(1).optional(),
    sshAcceptNewHostKey: z.boolean().default(false),
    sshDir: z.string().min(1).default('.sheepdog'),
    dbfile: z.string().min(1).default('./sheepdog.sqlite'),
    port: z.number().int().min(0).max(65535).optional(),
    bindHost: z.string().min(1).default('0.0.0.0'),
    localhost: z.string().min(1).optional(),
    shell: z.string().min(1).optional(),
    geOpts: z.array(z.string()).optional(),
    slurmOpts: z.array(z.string()).optional(),
    backend: z
      .union([
        z.enum(builtinBackends),
        z.custom<Backend>(isBackend, {
          message: `expected one of ${builtinBackends.join(', ')} or an object with name, submit, status and cancel`,
        }),
      ])
      .optional(),
    concurrency: z.number().int().positive().optional(),
    ownProcessGroup: z.boolean().default(false),
    workers: z.number().int().positive().optional(),
    maxRunning: z.number().int().positive().optional(),
    leaseMs: z.number().int().positive().optional(),
    maxHeapMb: z.number().int().positive().optional(),
    verbose: z.boolean().default(false),
    notes: z.boolean().default(true),
    timeout: z.number().positive().optional(),
    signal: z
      .custom<AbortSignal>((v) => v instanceof AbortSignal, { message: 'expected an AbortSignal' })
      .optional(),
    pollIntervalMs: z.number().int().positive().default(1000),
    lostGraceMs: z.number().int().nonnegative().default(5000),
    retries: z.number().int().nonnegative().default(0),
    retryErrors: z.boolean().default(false),
  })
  .strict();

/**
 * Options of `map`, `mapAsync` and friends. Every key is optional.
 *
 * The seed's keys keep their meaning, in camelCase: `host`, `sshPort`, `sshUser`, `sshKeyfile`,
 * `sshDir`, `dbfile`, `port`, `localhost`, `shell`, `geOpts`. The README documents each key.
 */
export type SheepdogConfig = z.input<typeof configSchema>;

/** The config after defaults are applied. */
export type ResolvedConfig = z.output<typeof configSchema> & {
  backend: BuiltinBackendName | Backend;
};

/** The error of a config with `issues`: the message lists them, one `path: message` line each. */
function invalidConfig(issues: readonly ConfigIssue[]): SheepdogError {
  const lines = issues.map((issue) => `  ${issue.path}: ${issue.message}`);
  return new SheepdogError(
    'INVALID_CONFIG',
    `invalid config, fix these and try again:\n${lines.join('\n')}`,
    { issues },
  );
}

/**
 * Parses a user config once, reporting every problem together.
 *
 * @throws SheepdogError `INVALID_CONFIG`, with each problem in `issues` and as one
 *   `path: message` line of the message.
 */
export function parseConfig(input: SheepdogConfig | undefined): ResolvedConfig {
  const parsed = configSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw invalidConfig(
      parsed.error.issues.map((issue) => ({
        path: issue.path.length > 0 ? issue.path.join('.') : '(config)',
        message: issue.message,
      })),
    );
  }
  const config = parsed.data;
  const backend = config.backend ?? (config.host === undefined ? 'local' : 'gridengine');
  if ((backend === 'gridengine' || backend === 'slurm') && config.host === undefined) {
    throw invalidConfig([
      {
        path: 'host',
        message: `the ${backend} backend needs the cluster's head node to SSH into, e.g. { host: 'head.example.org' }`,
      },
    ]);
  }
  return { ...config, backend };
}

const STORED_KEYS = [
  'host',
  'sshPort',
  'sshUser',
  'sshKeyfile',
  'sshKnownHostsFile',
  'sshDir',
  'shell',
  'geOpts',
  'slurmOpts',
  'concurrency',
  'workers',
  'maxRunning',
  'leaseMs',
  'maxHeapMb',
  'retries',
  'retryErrors',
  'pollIntervalMs',
  'lostGraceMs',
  'bindHost',
] as const satisfies readonly (keyof z.output<typeof configSchema>)[];

type StoredKey = (typeof STORED_KEYS)[number];
type ConfigShape = typeof configSchema.shape;
type WithoutDefault<T> = T extends z.ZodDefault<infer Inner> ? Inner : T;

// Each stored key is checked as the config checks it, but without its default: a stored config
// holds only the keys that were set, so that the caller's config and the defaults still apply
// when the request is served again.
const storedShape = Object.fromEntries(
  STORED_KEYS.map((key) => {
    const schema: z.ZodType = configSchema.shape[key];
    const checked = schema instanceof z.ZodDefault ? (schema.unwrap() as z.ZodType) : schema;
    return [key, checked.optional()];
  }),
) as { [K in StoredKey]: z.ZodOptional<WithoutDefault<ConfigShape[K]>> };

/**
 * A request's stored config: the keys of the config schema it keeps, plus where its workers
 * report. Keys it does not know (a later version's) are dropped, not refused.
 */
const storedConfigSchema = z.object({
  ...storedShape,
  backend: z.string().min(1),
  port,
  localhost: z.string().min(1),
});

/**
 * What is kept with a request (as its `config` JSON) so that another process can serve it
 * later: where its workers report (`port`, `localhost`), the backend's name (a custom backend
 * object must be passed again to resume), how to reach that backend again, and how to wait and
 * retry (`retries`, `retryErrors`, ...). Only keys without secrets: file paths, never keys or
 * tokens. `bindHost` is the address the server was bound to: a request kept to loopback stays
 * there.
 */
export type StoredConfig = Readonly<z.output<typeof storedConfigSchema>>;

/**
 * Reads a request's stored config: the one reader of what {@link toStoredConfig} wrote, for
 * every process that serves, watches or retries the request.
 *
 * @param value - the request's `config` as the database returns it
 * @returns the stored config, or `undefined` when `value` is not one: the request was not made
 *   by `map` or `mapAsync` (say with the storage package alone), so nothing says where its
 *   workers report
 */
export function parseStoredConfig(value: unknown): StoredConfig | undefined {
  const parsed = storedConfigSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** The part of a resolved config that is stored with a request; see {@link StoredConfig}. */
export function toStoredConfig(
  config: ResolvedConfig,
  backendName: string,
  worker: { port: number; localhost: string },
): StoredConfig {
  const stored: Record<string, unknown> = { backend: backendName, ...worker };
  for (const key of STORED_KEYS) if (config[key] !== undefined) stored[key] = config[key];
  return stored as unknown as StoredConfig;
}

/**
 * The config to serve a stored request with: the stored keys, overridden by the caller's (a key
 * file may live elsewhere on this machine). `port` and `localhost` are the stored ones whatever
 * the caller says: they are what the workers were given.
 */
export function fromStoredConfig(
  stored: StoredConfig,
  caller: SheepdogConfig | undefined,
): SheepdogConfig {
  const base: Record<string, unknown> = {};
  for (const key of STORED_KEYS) if (stored[key] !== undefined) base[key] = stored[key];
  if ((builtinBackends as readonly string[]).includes(stored.backend))
    base.backend = stored.backend;
  return { ...base, ...caller } as SheepdogConfig;
}
