// A smoke test of the bench itself: it runs one section at smoke sizes and checks the shape of
// what it writes. It never asserts a timing: figures depend on the machine and its load.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { planFor, SECTION_NAMES, UsageError } from './options.js';
import type { BenchResults } from './report.js';
import { TARGETS } from './targets.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'sheepdog-bench-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('pnpm bench --quick', () => {
  it('runs the storage section and writes latest.json and latest.md', async () => {
    expect(existsSync(cli), `${cli} is missing: run \`pnpm turbo run build\` first`).toBe(true);
    const { stdout } = await promisify(execFile)(process.execPath, [
      cli,
      '--quick',
      '--only',
      'storage',
      '--out',
      out,
    ]);
    const results = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as BenchResults;
    expect(results.schema).toBe(1);
    expect(results.plan.quick).toBe(true);
    expect(results.machine.cpus).toBeGreaterThan(0);
    expect(results.sections.map((s) => s.name)).toEqual(['storage']);
    const [storage] = results.sections;
    expect(storage?.status).toBe('ok');
    expect(storage?.figures.length).toBeGreaterThan(0);
    for (const figure of storage?.figures ?? []) {
      expect(figure.id).toMatch(/^storage\./);
      expect(figure.samples.length).toBeGreaterThan(0);
      expect(Number.isFinite(figure.median)).toBe(true);
      expect(figure.min).toBeLessThanOrEqual(figure.median);
      expect(figure.median).toBeLessThanOrEqual(figure.max);
    }
    expect(storage?.checks.length).toBeGreaterThan(0);
    expect(storage?.checks.filter((c) => !c.ok)).toEqual([]);
    expect(results.targets.map((t) => t.id)).toEqual(TARGETS.map((t) => t.id));
    for (const target of results.targets) expect([true, false, null]).toContain(target.met);
    expect(stdout).toContain('## Targets (issue 7)');
    expect(readFileSync(join(out, 'latest.md'), 'utf8')).toBe(stdout);
  }, 120_000);
});

describe('planFor', () => {
  it('runs every section by default and only the named ones with --only', () => {
    expect(planFor([])?.sections).toEqual(SECTION_NAMES);
    expect(planFor(['--only', 'gridengine,storage'])?.sections).toEqual(['storage', 'gridengine']);
  });

  it('sets the runs of every section with --runs', () => {
    const plan = planFor(['--runs', '2']);
    expect([plan?.storage.runs, plan?.ingest.runs, plan?.local.runs]).toEqual([2, 2, 2]);
  });

  it('refuses unknown sections, flags and bad numbers', () => {
    expect(() => planFor(['--only', 'nope'])).toThrow(UsageError);
    expect(() => planFor(['--fast'])).toThrow(UsageError);
    expect(() => planFor(['--runs', '0'])).toThrow(UsageError);
  });
});
