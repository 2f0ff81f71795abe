import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import {
  type ConfigIssue,
  describeError,
  isSheepdogError,
  parseConfig,
  type ResolvedConfig,
  type SheepdogConfig,
} from 'sheepdog';

type Kind = 'string' | 'int' | 'bool' | 'duration' | 'list';

/** One config key as a flag, an environment variable and a config file key. */
export interface Setting {
  /** The library's config key, as written in a config file. */
  readonly key: keyof SheepdogConfig & string;
  /** The flag's name without `--`; the variable is `SHEEPDOG_` and this in capitals. */
  readonly flag: string;
  readonly kind: Kind;
  readonly placeholder?: string;
  readonly description: string;
  /** A local path: relative values in a config file are relative to that file. */
  readonly path?: boolean;
}

/** Every config setting the commands take, in the order help lists them. */
export const SETTINGS: readonly Setting[] = [
  {
    key: 'dbfile',
    flag: 'db',
    kind: 'string',
    placeholder: 'file',
    description: 'SQLite database file of requests and results (default: ./sheepdog.sqlite)',
    path: true,
  },
  {
    key: 'host',
    flag: 'host',
    kind: 'string',
    placeholder: 'host',
    description:
      'cluster head node to SSH into; implies --backend gridengine (default: run locally)',
  },
  {
    key: 'backend',
    flag: 'backend',
    kind: 'string',
    placeholder: 'name',
    description: 'local, gridengine or slurm (default: gridengine with --host, else local)',
  },
  {
    key: 'port',
    flag: 'port',
    kind: 'int',
    placeholder: 'n',
    description: 'port of the server workers report to (default: any free port)',
  },
  {
    key: 'bindHost',
    flag: 'bind-host',
    kind: 'string',
    placeholder: 'addr',
    description: 'address the server listens on (default: 0.0.0.0)',
  },
  {
    key: 'localhost',
    flag: 'localhost',
    kind: 'string',
    placeholder: 'host',
    description:
      "host name workers use to reach this machine (default: the backend's choice or this FQDN)",
  },
  {
    key: 'shell',
    flag: 'shell',
    kind: 'string',
    placeholder: 'path',
    description:
      'Node.js binary that runs each task (default: /usr/bin/node on the cluster, this node locally)',
  },
  {
    key: 'geOpts',
    flag: 'ge-opt',
    kind: 'list',
    placeholder: 'option',
    description: 'extra Grid Engine submit option, e.g. "-l h_vmem=2G"; repeatable',
  },
  {
    key: 'slurmOpts',
    flag: 'slurm-opt',
    kind: 'list',
    placeholder: 'option',
    description: 'extra SLURM sbatch option, e.g. "--mem=2G"; repeatable',
  },
  {
    key: 'sshPort',
    flag: 'ssh-port',
    kind: 'int',
    placeholder: 'n',
    description: 'SSH port of the head node (default: 22)',
  },
  {
    key: 'sshUser',
    flag: 'ssh-user',
    kind: 'string',
    placeholder: 'user',
    description: 'SSH user name (default: User in ~/.ssh/config, else yours)',
  },
  {
    key: 'sshKeyfile',
    flag: 'ssh-key',
    kind: 'string',
    placeholder: 'file',
    description:
      'SSH private key file, tried after the agent (default: ~/.ssh/config and default keys)',
    path: true,
  },
  {
    key: 'sshKnownHostsFile',
    flag: 'ssh-known-hosts',
    kind: 'string',
    placeholder: 'file',
    description: 'known_hosts file to check the host key against (default: ~/.ssh/known_hosts)',
    path: true,
  },
  {
    key: 'sshAcceptNewHostKey',
    flag: 'accept-new-host-key',
    kind: 'bool',
    description: 'trust and record an unknown host key on first connection',
  },
  {
    key: 'sshDir',
    flag: 'ssh-dir',
    kind: 'string',
    placeholder: 'dir',
    description: 'directory on the cluster for job files (default: .sheepdog)',
  },
  {
    key: 'concurrency',
    flag: 'concurrency',
    kind: 'int',
    placeholder: 'n',
    description: 'local backend: tasks running at once (default: one per CPU)',
  },
  {
    key: 'maxHeapMb',
    flag: 'max-heap-mb',
    kind: 'int',
    placeholder: 'n',
    description: 'V8 heap cap of each task, in MiB',
  },
  {
    key: 'timeout',
    flag: 'timeout',
    kind: 'duration',
    placeholder: 'time',
    description: 'cancel what is still open after this long, e.g. 90s, 30m, 2h (bare number: ms)',
  },
  {
    key: 'retries',
    flag: 'retries',
    kind: 'int',
    placeholder: 'n',
    description: 'submit lost tasks again up to this many times (default: 0)',
  },
  {
    key: 'retryErrors',
    flag: 'retry-errors',
    kind: 'bool',
    description: 'with --retries, also retry tasks that raised an error',
  },
  {
    key: 'pollIntervalMs',
    flag: 'poll-interval',
    kind: 'duration',
    placeholder: 'time',
    description: 'how often to ask the backend about its tasks (default: 1s)',
  },
  {
    key: 'lostGraceMs',
    flag: 'lost-grace',
    kind: 'duration',
    placeholder: 'time',
    description:
      'how long a task the backend dropped may still report before it counts as lost (default: 5s)',
  },
];

/** The files looked for in the working directory, first found wins. */
export const CONFIG_FILES = [
  'sheepdog.config.json',
  'sheepdog.config.js',
  'sheepdog.config.mjs',
  'sheepdog.config.cjs',
  'sheepdog.config.ts',
  'sheepdog.config.mts',
] as const;

/** The environment variable of a setting. */
function envName(setting: Setting): string {
  return `SHEEPDOG_${setting.flag.toUpperCase().replaceAll('-', '_')}`;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Adds `--config` and the given settings' flags to a command. */
export function addConfigOptions(command: Command, only?: readonly string[]): Command {
  command.option(
    '-c, --config <file>',
    'config file (default: sheepdog.config.{json,js,mjs,cjs,ts,mts} in this directory)',
  );
  for (const s of SETTINGS) {
    if (only !== undefined && !only.includes(s.key)) continue;
    const flags = s.kind === 'bool' ? `--${s.flag}` : `--${s.flag} <${s.placeholder ?? 'value'}>`;
    if (s.kind === 'list') {
      command.option(flags, s.description, (value: string, previous: string[] = []) => [
        ...previous,
        value,
      ]);
    } else {
      command.option(flags, s.description);
    }
  }
  return command;
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `90s`, `30m`, `2h`, `250ms` or a bare number of milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (match?.[1] === undefined) return undefined;
  return Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] ?? 1);
}

function convert(setting: Setting, raw: unknown, source: string, problems: string[]): unknown {
  if (setting.kind === 'list') {
    if (Array.isArray(raw)) return raw;
    const text = String(raw).trim();
    if (!text.startsWith('[')) return [text];
    try {
      const list: unknown = JSON.parse(text);
      if (Array.isArray(list) && list.every((v) => typeof v === 'string')) return list;
    } catch {}
    problems.push(`${source}: expected one option or a JSON array of strings, got ${text}`);
    return undefined;
  }
  if (setting.kind === 'bool') {
    if (raw === true) return true;
    const text = String(raw).trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(text)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(text)) return false;
    problems.push(`${source}: expected true or false, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  const text = String(raw);
  if (setting.kind === 'int') {
    if (/^\s*-?\d+\s*$/.test(text)) return Number(text);
    problems.push(`${source}: expected a whole number, got ${JSON.stringify(text)}`);
    return undefined;
  }
  if (setting.kind === 'duration') {
    const ms = parseDuration(text);
    if (ms !== undefined) return ms;
    problems.push(
      `${source}: expected a duration such as 90s, 30m, 2h or a number of ms, got ${JSON.stringify(text)}`,
    );
    return undefined;
  }
  return text;
}

async function importTypeScript(file: string): Promise<unknown> {
  // Node.js 20 cannot load TypeScript by itself: borrow the project's own tsx, if it has one,
  // registering its loader the way `node --import tsx` does (before the first attempt, as Node
  // remembers a failed import).
  let loader: string | undefined;
  try {
    loader = createRequire(join(dirname(file), 'noop.js')).resolve('tsx');
  } catch {}
  if (loader !== undefined) await import(pathToFileURL(loader).href);
  try {
    return await import(pathToFileURL(file).href);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw error;
    throw new Error(
      `Node.js ${process.version} cannot import TypeScript by itself; install tsx in your project (npm i -D tsx), or use sheepdog.config.json or .js`,
      { cause: error },
    );
  }
}

async function readConfigFile(file: string, problems: string[]): Promise<Record<string, unknown>> {
  const ext = extname(file).toLowerCase();
  let value: unknown;
  try {
    if (ext === '.json') {
      value = JSON.parse(readFileSync(file, 'utf8'));
    } else {
      const module = (await (ext === '.ts' || ext === '.mts'
        ? importTypeScript(file)
        : import(pathToFileURL(file).href))) as { default?: unknown };
      value = module.default;
      // TypeScript compiled as CommonJS (no "type": "module") arrives wrapped in a second default.
      if (
        value !== null &&
        typeof value === 'object' &&
        Object.keys(value).length === 1 &&
        'default' in value &&
        ext !== '.js' &&
        ext !== '.mjs' &&
        ext !== '.cjs'
      ) {
        value = (value as { default: unknown }).default;
      }
      if (value === undefined) {
        problems.push(`${file}: export the config as the default export (export default { ... })`);
        return {};
      }
    }
  } catch (error) {
    problems.push(`${file}: cannot read it: ${(error as Error).message}`);
    return {};
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push(
      `${file}: expected an object of config keys, e.g. { "host": "head.example.org" }`,
    );
    return {};
  }
  return value as Record<string, unknown>;
}

/** Where the config comes from: the command's parsed flags, the environment, the working directory. */
export interface ConfigSources {
  /** The command's options as commander parsed them (strings, string lists, `true`). */
  readonly flags: Readonly<Record<string, unknown>>;
  readonly env?: NodeJS.ProcessEnv;
}

/** The merged config and where each key came from. */
export interface LoadedConfig {
  /**
   * The merged input, as the library takes it: `verbose` is always off (the CLI shows progress)
   * and `ownProcessGroup` always on.
   */
  readonly input: SheepdogConfig;
  /** The input after the library's defaults. */
  readonly resolved: ResolvedConfig;
  /** The config file used, if any. */
  readonly file: string | undefined;
}

/** One problem of the library's `INVALID_CONFIG`, naming where its key's value came from. */
function annotate(
  issue: ConfigIssue,
  origin: Map<string, string>,
  file: string | undefined,
): string {
  const source =
    issue.path === '(config)'
      ? file === undefined
        ? undefined
        : relative('.', file)
      : origin.get(issue.path.split('.')[0] ?? '');
  return `${issue.path}: ${issue.message}${source === undefined ? '' : ` (from ${source})`}`;
}

/**
 * Reads the config from a file, `SHEEPDOG_*` variables and flags, flags winning over variables
 * over the file, and checks it with the library's `parseConfig`. Every problem is appended to
 * `problems`, naming where the bad value came from; the result is `undefined` when there were any.
 */
export async function loadConfig(
  sources: ConfigSources,
  problems: string[],
): Promise<LoadedConfig | undefined> {
  const env = sources.env ?? process.env;
  const before = problems.length;
  const explicit = (sources.flags.config as string | undefined) ?? env.SHEEPDOG_CONFIG;
  let file: string | undefined;
  if (explicit !== undefined && explicit !== '') {
    file = resolve(explicit);
    if (!existsSync(file)) {
      problems.push(
        `${sources.flags.config === undefined ? 'SHEEPDOG_CONFIG' : '--config'}: ${explicit} does not exist`,
      );
      file = undefined;
    }
  } else {
    file = CONFIG_FILES.map((name) => resolve(name)).find((path) => existsSync(path));
  }
  const merged: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  if (file !== undefined) {
    const fromFile = await readConfigFile(file, problems);
    for (const [key, value] of Object.entries(fromFile)) {
      const setting = SETTINGS.find((s) => s.key === key);
      merged[key] =
        setting?.path && typeof value === 'string' && !isAbsolute(value) && value !== ':memory:'
          ? resolve(dirname(file), value)
          : value;
      origin.set(key, relative('.', file) || file);
    }
  }
  for (const setting of SETTINGS) {
    const name = envName(setting);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const value = convert(setting, raw, name, problems);
    if (value === undefined) continue;
    merged[setting.key] = value;
    origin.set(setting.key, name);
  }
  for (const setting of SETTINGS) {
    const raw = sources.flags[camel(setting.flag)];
    if (raw === undefined) continue;
    const value = convert(setting, raw, `--${setting.flag}`, problems);
    if (value === undefined) continue;
    merged[setting.key] = value;
    origin.set(setting.key, `--${setting.flag}`);
  }
  // Ctrl-C is this command's to handle (it asks whether to cancel, detach or wait on): local
  // tasks in a process group of their own do not die of the terminal's SIGINT meanwhile.
  const input = { ...merged, verbose: false, ownProcessGroup: true } as SheepdogConfig;
  let resolved: ResolvedConfig | undefined;
  try {
    resolved = parseConfig(input);
  } catch (error) {
    const issues = isSheepdogError(error, 'INVALID_CONFIG') ? (error.issues ?? []) : [];
    if (issues.length === 0) {
      problems.push(describeError(error));
    } else {
      for (const issue of issues) problems.push(annotate(issue, origin, file));
      // parseConfig checks for a missing host only once everything else is valid; say it now.
      const backend = merged.backend;
      if ((backend === 'gridengine' || backend === 'slurm') && merged.host === undefined) {
        if (!problems.some((p) => p.startsWith('host:'))) {
          problems.push(
            `host: the ${backend} backend needs the cluster's head node to SSH into, e.g. --host head.example.org (backend from ${origin.get('backend')})`,
          );
        }
      }
    }
  }
  if (resolved === undefined || problems.length > before) return undefined;
  return { input, resolved, file };
}

/**
 * The config to hand `serve`, `retry`, `cancel` and `resume`, which rebuild each request's
 * backend from the settings stored with it and lay these over them: everything the user gave
 * except where the request lives and reports (`dbfile`, `port`), and a backend given by name,
 * which would move a request to another backend. A custom backend object is kept: the library
 * needs it passed again.
 */
export function resumeConfig(loaded: LoadedConfig): SheepdogConfig {
  const { dbfile: _dbfile, port: _port, backend, ...rest } = loaded.input;
  // The library's notes name its functions; the commands say what to run in their own words.
  const quiet = { ...rest, notes: false };
  return typeof backend === 'object' ? { ...quiet, backend } : quiet;
}
