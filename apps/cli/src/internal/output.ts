import { once } from 'node:events';
import { createWriteStream } from 'node:fs';

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

/** Writes lines to a file (`out`) or to standard output, and waits until they are written. */
export async function writeLines(lines: Iterable<string>, out: string | undefined): Promise<void> {
  const stream = out === undefined ? process.stdout : createWriteStream(out);
  for (const line of lines) {
    if (!stream.write(`${line}\n`)) await once(stream, 'drain');
  }
  if (out !== undefined) {
    stream.end();
    await once(stream, 'finish');
  }
}
