import { z } from 'zod';
import type { Backend } from './backend.js';
import { SheepdogError } from './errors.js';

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

/**
 * Parses a user config once, reporting every problem together as `path: message` lines.
 *
 * @throws SheepdogError `INVALID_CONFIG` listing each problem.
 */
export function parseConfig(input: SheepdogConfig | undefined): ResolvedConfig {
  const parsed = configSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const path = issue.path.length > 0 ? issue.path.join('.') : '(config)';
      return `  ${path}: ${issue.message}`;
    });
    throw new SheepdogError(
      'INVALID_CONFIG',
      `invalid config, fix these and try again:\n${lines.join('\n')}`,
    );
  }
  const config = parsed.data;
  const backend = config.backend ?? (config.host === undefined ? 'local' : 'gridengine');
  if ((backend === 'gridengine' || backend === 'slurm') && config.host === undefined) {
    throw new SheepdogError(
      'INVALID_CONFIG',
      `invalid config, fix these and try again:\n  host: the ${backend} backend needs the cluster's head node to SSH into, e.g. { host: 'head.example.org' }`,
    );
  }
  return { ...config, backend };
}

/**
 * What is kept with a request (as its `config` JSON) so that another process can serve it
 * later: where its workers report, and how to reach its backend again. Only keys without
 * secrets: file paths, never keys or tokens.
 */
export interface StoredConfig {
  /** The backend's name; a custom backend object must be passed again to resume. */
  readonly backend: string;
  /** The port the workers were given. */
  readonly port: number;
  /** The host name the workers were given. */
  readonly localhost: string;
  readonly host?: string;
  readonly sshPort?: number;
  readonly sshUser?: string;
  readonly sshKeyfile?: string;
  readonly sshKnownHostsFile?: string;
  readonly sshDir?: string;
  readonly shell?: string;
  readonly geOpts?: string[];
  readonly slurmOpts?: string[];
  readonly concurrency?: number;
  readonly workers?: number;
  readonly maxRunning?: number;
  readonly leaseMs?: number;
  readonly maxHeapMb?: number;
  readonly retries?: number;
  readonly retryErrors?: boolean;
  readonly pollIntervalMs?: number;
  readonly lostGraceMs?: number;
  /** The address the server was bound to: a request kept to loopback stays there. */
  readonly bindHost?: string;
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
] as const satisfies readonly (keyof StoredConfig & keyof ResolvedConfig)[];

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
  stored: unknown,
  caller: SheepdogConfig | undefined,
): SheepdogConfig {
  const base: Record<string, unknown> = {};
  if (typeof stored === 'object' && stored !== null) {
    const s = stored as Record<string, unknown>;
    for (const key of STORED_KEYS) if (s[key] !== undefined) base[key] = s[key];
    if (typeof s.backend === 'string' && (builtinBackends as readonly string[]).includes(s.backend))
      base.backend = s.backend;
  }
  return { ...base, ...caller } as SheepdogConfig;
}
