import { relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getTaskStates, listRequests, type RequestSummary } from 'sheepdog';
import { usageError } from '../errors.js';
import { loadConfig } from '../internal/config.js';
import { checkDatabase, findRequest } from '../internal/outcomes.js';
import { parseId } from '../internal/output.js';
import { table } from '../internal/table.js';

/** Options of `sheepdog status`. */
export interface StatusOptions extends Record<string, unknown> {
  readonly json?: boolean;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function localTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The function's label, with a module under the working directory shown as a relative path. */
function shortLabel(label: string | null): string {
  if (label === null) return '-';
  if (!label.startsWith('file:')) return label;
  const hash = label.lastIndexOf('#');
  const url = hash === -1 ? label : label.slice(0, hash);
  const name = hash === -1 ? '' : label.slice(hash);
  try {
    const path = relative('.', fileURLToPath(url));
    return `${path.startsWith('..') ? fileURLToPath(url) : `.${sep}${path}`}${name}`;
  } catch {
    return label;
  }
}

function asJson(r: RequestSummary): Record<string, unknown> {
  return {
    id: r.id,
    created: new Date(r.createdAt).toISOString(),
    function: r.label,
    backend: r.backend,
    tasks: r.nTasks,
    ...r.states,
  };
}

const HEADER = [
  'id',
  'created',
  'function',
  'backend',
  'tasks',
  'done',
  'failed',
  'lost',
  'running',
  'pending',
  'cancelled',
] as const;

function row(r: RequestSummary): Array<string | number> {
  const s = r.states;
  return [
    r.id,
    localTime(r.createdAt),
    shortLabel(r.label),
    r.backend ?? '-',
    r.nTasks,
    s.done,
    s.failed,
    s.lost,
    s.running,
    s.pending,
    s.cancelled,
  ];
}

/** `sheepdog status [id]`: a table (or JSON) of the requests in the database. */
export async function statusCommand(id: string | undefined, opts: StatusOptions): Promise<number> {
  const problems: string[] = [];
  const requestId = id === undefined ? undefined : parseId(id, problems);
  const config = await loadConfig({ flags: opts }, problems);
  if (problems.length > 0 || config === undefined)
    throw usageError('cannot show the status', problems);
  const dbfile = config.resolved.dbfile;
  if (requestId === undefined) {
    checkDatabase(dbfile);
    const requests = await listRequests(dbfile);
    if (opts.json) process.stdout.write(`${JSON.stringify(requests.map(asJson), null, 2)}\n`);
    else if (requests.length === 0) process.stdout.write(`no requests in ${dbfile} yet\n`);
    else process.stdout.write(`${table(HEADER, requests.map(row))}\n`);
    return 0;
  }
  const request = await findRequest(requestId, dbfile);
  const tasks = await getTaskStates(requestId, dbfile);
  if (opts.json) {
    const detail = { ...asJson(request), taskStates: tasks };
    process.stdout.write(`${JSON.stringify(detail, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(`${table(HEADER, [row(request)])}\n`);
  const explained = tasks.filter((t) => t.reason !== null && t.state !== 'done');
  for (const t of explained) {
    process.stdout.write(`  task ${t.jobIndex} ${t.state}: ${t.reason}\n`);
  }
  return 0;
}
