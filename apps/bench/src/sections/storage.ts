import { join } from 'node:path';
import { runChild } from '../internal/child.js';
import type { Section } from '../internal/section.js';
import { sizeLabel } from '../internal/section.js';
import type { StorageCase, StorageCaseResult } from '../internal/storage-case.js';
import { type Check, diagnostic, type Figure, figure } from '../report.js';

const CASE_SCRIPT = new URL('../internal/storage-case.js', import.meta.url);

function storageCase(input: StorageCase): Promise<StorageCaseResult> {
  return runChild<StorageCaseResult>(CASE_SCRIPT, input);
}

/**
 * Storage alone, each run in a fresh child process so that its peak RSS is the case's own:
 * `newRequest` at several sizes (with encoding the args alone as the baseline for the largest),
 * `getTasksWithResults` over a prepared request, and results stored one at a time.
 */
/** The time and peak RSS of one case, as `<id>.timeS` (or `.timeMs`) and `<id>.peakRssMb`. */
function timeAndRss(
  id: string,
  label: string,
  time: readonly number[],
  rss: readonly number[],
  unit: 's' | 'ms' = 's',
): Figure[] {
  return [
    figure(`${id}.time${unit === 's' ? 'S' : 'Ms'}`, `${label}: time`, unit, time),
    figure(`${id}.peakRssMb`, `${label}: peak RSS`, 'MB', rss),
  ];
}

export const storageSection: Section = async ({ plan, workDir, log }) => {
  const { runs, newRequestSizes, readSize, storeSize } = plan.storage;
  const figures: Figure[] = [];
  const checks: Check[] = [];
  const check = (what: string, result: StorageCaseResult): void => {
    checks.push({ what, ok: result.ok, ...(result.detail ? { detail: result.detail } : {}) });
  };
  const largest = Math.max(...newRequestSizes);

  for (const n of newRequestSizes) {
    const time: number[] = [];
    const rss: number[] = [];
    const startRss: number[] = [];
    const encodeTime: number[] = [];
    const encodeRss: number[] = [];
    const v8Time: number[] = [];
    const v8Rss: number[] = [];
    const asyncTime: number[] = [];
    const asyncRss: number[] = [];
    for (let run = 1; run <= runs; run++) {
      log(`storage: newRequest ${sizeLabel(n)}, run ${run}/${runs}`);
      const dbfile = join(workDir, `new-request-${n}-${run}.sqlite`);
      const result = await storageCase({ kind: 'newRequest', dbfile, n });
      check(`newRequest ${sizeLabel(n)} run ${run}: every task stored`, result);
      time.push(result.timeMs / 1000);
      rss.push(result.peakRssMb);
      startRss.push(result.startRssMb);
      if (n === largest) {
        // Same run, same size: the chunked path map takes, and the args' encoding alone.
        const chunked = await storageCase({
          kind: 'newRequestAsync',
          dbfile: join(workDir, `new-request-async-${n}-${run}.sqlite`),
          n,
        });
        check(`newRequestAsync ${sizeLabel(n)} run ${run}: every task stored`, chunked);
        asyncTime.push(chunked.timeMs / 1000);
        asyncRss.push(chunked.peakRssMb);
        const encoded = await storageCase({ kind: 'encodeArgs', n, encoder: 'encodeArgs' });
        encodeTime.push(encoded.timeMs / 1000);
        encodeRss.push(encoded.peakRssMb);
        const v8 = await storageCase({ kind: 'encodeArgs', n, encoder: 'v8.serialize' });
        v8Time.push(v8.timeMs / 1000);
        v8Rss.push(v8.peakRssMb);
      }
    }
    const label = `newRequest, ${sizeLabel(n)} tasks`;
    figures.push(
      figure(`storage.newRequest.${n}.timeS`, `${label}: time`, 's', time),
      figure(
        `storage.newRequest.${n}.usPerTask`,
        `${label}: per task`,
        'µs',
        time.map((s) => (s * 1e6) / n),
        '9–11 µs',
      ),
      figure(`storage.newRequest.${n}.peakRssMb`, `${label}: peak RSS`, 'MB', rss),
      diagnostic(
        `storage.newRequest.${n}.startRssMb`,
        `${label}: RSS before newRequest (Node, modules, open database)`,
        'MB',
        startRss,
      ),
    );
    if (n === largest) {
      figures.push(
        ...timeAndRss(
          `storage.newRequestAsync.${n}`,
          `newRequestAsync (chunked, as map stores args), ${sizeLabel(n)} tasks`,
          asyncTime,
          asyncRss,
        ),
        ...timeAndRss(
          `storage.encodeArgs.${n}`,
          `baseline: encoding the ${sizeLabel(n)} args alone (encodeArgs, no storage)`,
          encodeTime,
          encodeRss,
        ),
        ...timeAndRss(
          `storage.encodeArgsV8.${n}`,
          `baseline: encoding the ${sizeLabel(n)} args alone with v8.serialize`,
          v8Time,
          v8Rss,
        ),
      );
    }
  }

  log(`storage: preparing a request of ${sizeLabel(readSize)} tasks with results`);
  const readFile = join(workDir, `read-${readSize}.sqlite`);
  const prepared = await storageCase({ kind: 'prepareRead', dbfile: readFile, n: readSize });
  const requestId = prepared.requestId as number;
  const readTime: number[] = [];
  const readRss: number[] = [];
  for (let run = 1; run <= runs; run++) {
    log(`storage: getTasksWithResults ${sizeLabel(readSize)}, run ${run}/${runs}`);
    const result = await storageCase({
      kind: 'getTasksWithResults',
      dbfile: readFile,
      requestId,
      n: readSize,
    });
    check(
      `getTasksWithResults ${sizeLabel(readSize)} run ${run}: every row has its result`,
      result,
    );
    readTime.push(result.timeMs);
    readRss.push(result.peakRssMb);
  }
  figures.push(
    ...timeAndRss(
      `storage.getTasksWithResults.${readSize}`,
      `getTasksWithResults, ${sizeLabel(readSize)} tasks`,
      readTime,
      readRss,
      'ms',
    ),
  );

  const storeRate: number[] = [];
  for (let run = 1; run <= runs; run++) {
    log(`storage: storeResult × ${sizeLabel(storeSize)}, run ${run}/${runs}`);
    const dbfile = join(workDir, `store-${storeSize}-${run}.sqlite`);
    const result = await storageCase({ kind: 'storeResults', dbfile, n: storeSize });
    check(`storeResult × ${sizeLabel(storeSize)} run ${run}: each stored once`, result);
    storeRate.push(storeSize / (result.timeMs / 1000));
  }
  figures.push(
    figure(
      `storage.storeResult.${storeSize}.perS`,
      `storeResult, ${sizeLabel(storeSize)} one at a time`,
      'results/s',
      storeRate,
      '393 results/s',
    ),
  );

  return {
    figures,
    checks,
    settings: { runs, newRequestSizes, readSize, storeSize, args: 'encodeArgs(i) per task' },
  };
};
