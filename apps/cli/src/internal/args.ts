import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { decodeJson } from './json.js';

/** How an arguments file is laid out. */
export type ArgsFormat = 'json' | 'jsonl';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJsonl(text: string, name: string, problems: string[]): unknown[] {
  const values: unknown[] = [];
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    try {
      values.push(decodeJson(JSON.parse(line)));
    } catch (error) {
      problems.push(`${name}:${i + 1}: not JSON (${(error as Error).message})`);
    }
  }
  return values;
}

/**
 * Reads the task arguments: a JSON array (one element per task) or JSON lines (one task per
 * line), from a file or `-` for standard input. An element that is an array is the task's
 * positional arguments; anything else is its single argument. Problems are appended to
 * `problems` (with line numbers) instead of thrown, so they are reported with all the others.
 */
export async function readArgs(
  source: string | undefined,
  format: ArgsFormat | undefined,
  problems: string[],
): Promise<unknown[]> {
  if (source === undefined) {
    problems.push(
      '--args: missing; give a .json file (an array), a .jsonl file (one task per line), or - for stdin',
    );
    return [];
  }
  const name = source === '-' ? 'stdin' : source;
  let text: string;
  try {
    text = source === '-' ? await readStdin() : await readFile(source, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    problems.push(
      code === 'ENOENT'
        ? `--args: ${source} does not exist (looked in ${process.cwd()})`
        : `--args: cannot read ${source}: ${(error as Error).message}`,
    );
    return [];
  }
  const ext = extname(source).toLowerCase();
  const chosen: ArgsFormat | 'auto' =
    format ?? (ext === '.jsonl' || ext === '.ndjson' ? 'jsonl' : source === '-' ? 'auto' : 'json');
  if (chosen === 'jsonl') return parseJsonl(text, name, problems);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // Standard input without --args-format: whatever is not one JSON document is JSON lines.
    if (chosen === 'auto') return parseJsonl(text, name, problems);
    problems.push(
      `${name}: not JSON (${(error as Error).message}); for one task per line use a .jsonl file or --args-format jsonl`,
    );
    return [];
  }
  if (chosen === 'auto' && !Array.isArray(parsed)) return [decodeJson(parsed)];
  if (!Array.isArray(parsed)) {
    problems.push(
      `${name}: expected a JSON array with one element per task, got ${parsed === null ? 'null' : typeof parsed}`,
    );
    return [];
  }
  return parsed.map(decodeJson);
}
