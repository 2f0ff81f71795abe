import { once } from 'node:events';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Parses a request id argument, appending a problem when it is not a positive integer. */
export function parseId(text: string, problems: string[]): number {
  if (/^\d+$/.test(text) && Number(text) > 0 && Number.isSafeInteger(Number(text))) {
    return Number(text);
  }
  problems.push(
    `${JSON.stringify(text)} is not a request id; ids are positive whole numbers (\`sheepdog status\` lists them)`,
  );
  return 0;
}

/** Quotes a word for a POSIX shell when it needs it, so printed commands can be pasted. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Writes lines to a file (`out`) or to standard output, and waits until they are written. A
 * reader that goes away (`sheepdog results 3 | head`) ends the writing quietly.
 */
export async function writeLines(lines: Iterable<string>, out: string | undefined): Promise<void> {
  const stream = out === undefined ? process.stdout : createWriteStream(out);
  let gone = false;
  const onError = (error: NodeJS.ErrnoException): void => {
    if (error.code === 'EPIPE' && out === undefined) gone = true;
  };
  stream.on('error', onError);
  try {
    for (const line of lines) {
      if (gone) return;
      if (!stream.write(`${line}\n`)) await once(stream, 'drain');
    }
    if (out !== undefined) {
      stream.end();
      await once(stream, 'finish');
    }
  } catch (error) {
    if (!gone) throw error;
  } finally {
    stream.off('error', onError);
  }
}

/** Checks up front that `--out` can be created, so a long run does not end in a write error. */
export function checkOut(out: string | undefined, problems: string[]): void {
  if (out === undefined) return;
  const folder = dirname(resolve(out));
  if (!existsSync(folder))
    problems.push(`--out: the folder ${folder} does not exist; create it first`);
  else if (existsSync(out) && statSync(out).isDirectory()) {
    problems.push(`--out: ${out} is a directory; give a file name`);
  }
}
