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
    maxHeapMb: z.number().int().positive().optional(),
    verbose: z.boolean().default(false),
    timeout: z.number().positive().optional(),
    signal: z
      .custom<AbortSignal>((v) => v instanceof AbortSignal, { message: 'expected an AbortSignal' })
      .optional(),
    pollIntervalMs: z.number().int().positive().default(1000),
    lostGraceMs: z.number().int().nonnegative().default(5000),
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
