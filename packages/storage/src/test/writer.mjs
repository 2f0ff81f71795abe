// A separate OS process for the concurrency tests: it imports the BUILT package, as a user
// would, waits at a barrier until every writer has started, so they overlap, then writes.
// Usage: node writer.mjs <dbfile> <barrier dir> <parties> <mode> ...
//   store <requestId> <n> <asc|desc> <tag>   store results for job indexes 1..n
//   fresh <n> <tag>                         open a (possibly new) file, add a request, store n results
// Prints one JSON line: { requestId, stored: job indexes stored by this process, startedAt,
// finishedAt } (times in ms since the epoch, with sub-ms precision).
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Storage } from '../../dist/index.js';

const [dbfile, barrier, parties, mode, ...rest] = process.argv.slice(2);
// Process start-up varies by tens of ms, more than a writer needs for all its work; a file
// barrier lines the writers up to within a millisecond or so.
writeFileSync(join(barrier, String(process.pid)), '');
while (readdirSync(barrier).length < Number(parties)) {
  await new Promise((resolve) => setTimeout(resolve, 1));
}

const enc = new TextEncoder();
const storage = new Storage(dbfile);
const stored = [];
let requestId;
const startedAt = performance.timeOrigin + performance.now();
if (mode === 'store') {
  const [id, n, order, tag] = rest;
  requestId = Number(id);
  const indexes = Array.from({ length: Number(n) }, (_, i) => i + 1);
  if (order === 'desc') indexes.reverse();
  for (const jobIndex of indexes) {
    storage.markRunning(requestId, jobIndex);
    if (storage.storeResult(requestId, jobIndex, enc.encode(`${tag}:${jobIndex}`))) {
      stored.push(jobIndex);
    }
  }
} else if (mode === 'fresh') {
  const [n, tag] = rest;
  const args = Array.from({ length: Number(n) }, (_, i) => enc.encode(`${tag}:${i + 1}`));
  requestId = storage.newRequest(enc.encode(tag), enc.encode('ns'), args);
  for (let jobIndex = 1; jobIndex <= Number(n); jobIndex++) {
    if (storage.storeResult(requestId, jobIndex, enc.encode(`${tag}:result:${jobIndex}`))) {
      stored.push(jobIndex);
    }
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
const finishedAt = performance.timeOrigin + performance.now();
storage.close();
process.stdout.write(`${JSON.stringify({ requestId, stored, startedAt, finishedAt })}\n`);
