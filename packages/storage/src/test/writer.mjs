// A separate OS process for the concurrency tests: it imports the BUILT package, as a user
// would, waits for a shared start time so several writers overlap, then writes results.
// Usage: node writer.mjs <dbfile> <startAt ms> <mode> ...
//   store <requestId> <n> <asc|desc> <tag>   store results for job indexes 1..n
//   fresh <n> <tag>                         open a (possibly new) file, add a request, store n results
// Prints one JSON line: { stored: number[] } or { requestId, stored }.
import { Storage } from '../../dist/index.js';

const [dbfile, startAt, mode, ...rest] = process.argv.slice(2);
const wait = Number(startAt) - Date.now();
if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));

const enc = new TextEncoder();
const storage = new Storage(dbfile);
const stored = [];
let requestId;
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
storage.close();
process.stdout.write(`${JSON.stringify({ requestId, stored })}\n`);
