// `pnpm bench`: runs the selected sections, then writes latest.json and latest.md and prints the
// markdown table. Exit status 1 when a section failed or a correctness check did not hold (the
// figures are then not to be trusted), 2 for bad flags; timings never fail the bench.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Section } from './internal/section.js';
import { planFor, type SectionName, UsageError, usage } from './options.js';
import { type BenchResults, renderMarkdown, type SectionResult } from './report.js';
import { completionSection } from './sections/completion.js';
import { gridEngineSection } from './sections/gridengine.js';
import { ingestSection } from './sections/ingest.js';
import { localSection } from './sections/local.js';
import { storageSection } from './sections/storage.js';
import { judgeTargets } from './targets.js';

const SECTIONS: Record<SectionName, Section> = {
  storage: storageSection,
  ingest: ingestSection,
  completion: completionSection,
  local: localSection,
  gridengine: gridEngineSection,
};

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function main(argv: readonly string[]): Promise<number> {
  let plan: ReturnType<typeof planFor>;
  try {
    // `pnpm bench -- --quick` may hand the script a literal `--` first.
    plan = planFor(argv[0] === '--' ? argv.slice(1) : argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${usage()}\n`);
    return 2;
  }
  if (plan === undefined) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }

  const started = new Date();
  const loadAtStart = loadavg()[0] ?? 0;
  const workDir = mkdtempSync(join(tmpdir(), 'sheepdog-bench-'));
  const sections: SectionResult[] = [];
  try {
    for (const name of plan.sections) {
      const t0 = performance.now();
      log(`section ${name}`);
      let result: SectionResult;
      try {
        const out = await SECTIONS[name]({ plan, workDir, log });
        result = {
          name,
          status: out.skipped === undefined ? 'ok' : 'skipped',
          ...(out.skipped === undefined ? {} : { reason: out.skipped }),
          durationS: 0,
          settings: out.settings,
          figures: out.figures,
          checks: out.checks,
        };
        if (out.skipped !== undefined) log(`section ${name} skipped: ${out.skipped}`);
      } catch (error) {
        const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
        log(`section ${name} failed: ${reason}`);
        result = {
          name,
          status: 'failed',
          reason,
          durationS: 0,
          settings: {},
          figures: [],
          checks: [],
        };
      }
      result.durationS = (performance.now() - t0) / 1000;
      sections.push(result);
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }

  const finished = new Date();
  const cpuList = cpus();
  const results: BenchResults = {
    schema: 1,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationS: (finished.getTime() - started.getTime()) / 1000,
    machine: {
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      cpus: cpuList.length,
      cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
      totalMemoryMb: Math.round(totalmem() / 2 ** 20),
      loadAverage: { start: loadAtStart, end: loadavg()[0] ?? 0 },
    },
    plan,
    sections,
    targets: judgeTargets(sections.flatMap((s) => s.figures)),
  };
  const markdown = renderMarkdown(results);
  mkdirSync(plan.outDir, { recursive: true });
  writeFileSync(join(plan.outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(plan.outDir, 'latest.md'), markdown);
  process.stdout.write(markdown);
  log(`wrote ${join(plan.outDir, 'latest.json')} and latest.md`);

  const failedChecks = sections.flatMap((s) => s.checks).filter((c) => !c.ok);
  const failedSections = sections.filter((s) => s.status === 'failed');
  if (failedChecks.length > 0 || failedSections.length > 0) {
    log(
      `${failedSections.length} section(s) failed and ${failedChecks.length} check(s) did not hold; see the report`,
    );
    return 1;
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `[bench] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
