// Small helpers the end-to-end suites share.
import { Storage } from '@sheepdog/storage';
import { vi } from 'vitest';

/** Reads from a database file with a storage of its own, closed afterwards. */
export function look<T>(dbfile: string, read: (storage: Storage) => T): T {
  const storage = new Storage(dbfile);
  try {
    return read(storage);
  } finally {
    storage.close();
  }
}

/** The id of the newest request in a database file. */
export function lastRequest(dbfile: string): number {
  return look(dbfile, (s) => s.listRequests().at(-1)?.id as number);
}

/** Runs `body` with stderr silenced (the notes about lost tasks), returning what was written. */
export async function quietly<T>(body: () => Promise<T>): Promise<[T, string]> {
  const written: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    written.push(String(chunk));
    return true;
  });
  try {
    return [await body(), written.join('')];
  } finally {
    spy.mockRestore();
  }
}
