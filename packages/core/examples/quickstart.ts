// The README's first example: a real map on the local backend and an SQLite file.
import { map } from 'sheepdog';

const isPrime = (n: number): boolean => {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d += 1) if (n % d === 0) return false;
  return true;
};

const countPrimes = async (from: number, to: number): Promise<number> => {
  let count = 0;
  for (let n = from; n < to; n += 1) if (isPrime(n)) count += 1;
  return count;
};

const ranges: Array<[number, number]> = Array.from({ length: 8 }, (_, i) => [
  i * 100_000,
  (i + 1) * 100_000,
]);
const dbfile = './sheepdog-example.sqlite';
const counts = await map(countPrimes, ranges, { dbfile, verbose: true }, { isPrime });
for (const [i, [from, to]] of ranges.entries())
  console.log(`primes in [${from}, ${to}): ${counts[i]}`);
const total = counts.reduce((sum: number, c) => sum + (c ?? 0), 0);
// pi(800000) = 63951: a wrong or missing result shows here.
console.log(`primes below 800000: ${total} (expected 63951)`);
if (total !== 63951) process.exitCode = 1;
