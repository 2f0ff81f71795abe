import { join } from 'node:path';
import { Deployer, type DeployerOptions, parseQsubJobId, shellQuote } from '@sheepdog/deployer';
import { Storage } from '@sheepdog/storage';
import {
  clusterMapConfig,
  clusterSsh,
  loadCluster,
  type TestCluster,
} from '@sheepdog/test-cluster';
import { map, type SheepdogConfig } from 'sheepdog';
import type { Section } from '../internal/section.js';
import { type Check, type Figure, figure } from '../report.js';

/** Remote folder (under the cluster user's home) for this bench's job files and logs. */
const REMOTE_DIR = '.sheepdog-bench';

/** Pause between two `qstat -j` polls; each poll is itself an SSH exec of ~0.1–0.4 s. */
const POLL_MS = 250;

/** Polls `qstat -j <id>` until Grid Engine no longer knows the job; resolves with that moment. */
async function untilGone(deployer: Deployer, jobId: string, deadlineMs = 900_000): Promise<number> {
  const deadline = performance.now() + deadlineMs;
  for (;;) {
    const result = await deployer.exec(`qstat -j ${shellQuote(jobId)}`);
    if (result.code !== 0) return performance.now();
    if (performance.now() > deadline) {
      throw new Error(
        `Grid Engine job ${jobId} still exists after ${deadlineMs / 1000} s; qdel it by hand`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The raw array: `qsub -t 1-n -b y node -e 0`, timed from submission until qstat says gone. */
async function rawArray(
  options: DeployerOptions,
  dir: string,
  node: string,
  n: number,
): Promise<number> {
  const deployer = new Deployer(options);
  try {
    const t0 = performance.now();
    const command = [
      'qsub -terse -b y',
      `-t 1-${n}`,
      '-N sheepdog-bench-raw',
      `-wd ${shellQuote(dir)} -o ${shellQuote(dir)} -e ${shellQuote(dir)}`,
      `${shellQuote(node)} -e 0`,
    ].join(' ');
    const submitted = await deployer.exec(command);
    const jobId = parseQsubJobId(submitted.stdout);
    if (submitted.code !== 0 || jobId === undefined) {
      throw new Error(
        `raw qsub failed (exit ${submitted.code}): ${submitted.stderr.trim() || submitted.stdout.trim()}`,
      );
    }
    return ((await untilGone(deployer, jobId)) - t0) / 1000;
  } finally {
    await deployer.close();
  }
}

/** The Grid Engine job ids a map stored in its (fresh) dbfile: request 1's submissions. */
function jobIdsOf(dbfile: string): string[] {
  const storage = new Storage(dbfile);
  try {
    return storage.getJobs(1).map((job) => job.jobId);
  } finally {
    storage.close();
  }
}

/**
 * Removes the bench's remote folder. Array tasks may still be writing their logs for a moment
 * after Grid Engine forgets the job, so it retries; a folder left behind is only worth a warning.
 */
async function removeRemoteDir(
  deployer: Deployer,
  dir: string,
  log: (message: string) => void,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const result = await deployer.exec(`rm -rf ${shellQuote(dir)}`);
    if (result.code === 0) return;
    if (attempt === 5) {
      log(`gridengine: could not remove ${dir} on the cluster: ${result.stderr.trim()}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

function skipped(reason: string): ReturnType<Section> {
  return Promise.resolve({ figures: [], checks: [], settings: {}, skipped: reason });
}

/**
 * Grid Engine end to end on the test cluster: `map` of trivial tasks with the gridengine backend
 * against a raw array of `node -e 0` of the same size, alternately, in the same run. Skipped,
 * with the reason, when the test cluster is not set up: the bench is not a test.
 */
export const gridEngineSection: Section = async ({ plan, workDir, log }) => {
  let cluster: TestCluster;
  try {
    cluster = loadCluster('gridengine');
  } catch (error) {
    return skipped((error as Error).message);
  }
  const { runs, tasks: n } = plan.gridengine;
  const ssh: DeployerOptions = clusterSsh(cluster);
  const mapConfig = (dbfile: string): SheepdogConfig => ({
    backend: 'gridengine',
    ...clusterMapConfig(cluster),
    sshDir: REMOTE_DIR,
    dbfile,
    bindHost: '127.0.0.1',
    localhost: '127.0.0.1',
  });
  const admin = new Deployer(ssh);
  const figures: Figure[] = [];
  const checks: Check[] = [];
  try {
    const home = (await admin.run('printf %s "$HOME"')).stdout.trim();
    const dir = `${home}/${REMOTE_DIR}`;
    // Output folders must exist before a job starts, or its tasks wait in Eqw for ever.
    await admin.run(`mkdir -p ${shellQuote(dir)}`);
    const mapped: number[] = [];
    const mappedGone: number[] = [];
    const raw: number[] = [];
    for (let run = 1; run <= runs; run++) {
      log(`gridengine: raw array of ${n} × node -e 0, run ${run}/${runs}`);
      raw.push(await rawArray(ssh, dir, cluster.node, n));

      log(`gridengine: map of ${n} tasks, run ${run}/${runs}`);
      const dbfile = join(workDir, `gridengine-${run}.sqlite`);
      const args = Array.from({ length: n }, (_, i) => i + 1);
      const t0 = performance.now();
      const results = await map((x: number) => x, args, mapConfig(dbfile));
      mapped.push((performance.now() - t0) / 1000);
      const jobId = jobIdsOf(dbfile)[0];
      if (jobId === undefined) throw new Error(`map stored no Grid Engine job in ${dbfile}`);
      // Like for like with the raw array: until the scheduler itself is done with the job.
      mappedGone.push(((await untilGone(admin, jobId)) - t0) / 1000);
      const wrong = results.filter((r, i) => r !== i + 1).length;
      checks.push({
        what: `gridengine map ${n} run ${run}: every result back in order`,
        ok: wrong === 0,
        ...(wrong === 0 ? {} : { detail: `${wrong} of ${n} results wrong` }),
      });
    }
    figures.push(
      figure(`gridengine.${n}.timeS`, `map of ${n} tasks: until map resolved`, 's', mapped),
      figure(
        `gridengine.${n}.goneS`,
        `map of ${n} tasks: until qstat -j says its job is gone`,
        's',
        mappedGone,
      ),
      figure(
        `gridengine.raw.${n}.timeS`,
        `baseline: raw qsub -t 1-${n} of node -e 0, until qstat -j says gone`,
        's',
        raw,
        '8–10 s (200 tasks)',
      ),
      figure(
        `gridengine.${n}.ratio`,
        `map resolved / raw array gone, ${n} tasks`,
        '×',
        mapped.map((s, i) => s / (raw[i] as number)),
      ),
      figure(
        `gridengine.${n}.goneRatio`,
        `map's job gone / raw array gone, ${n} tasks`,
        '×',
        mappedGone.map((s, i) => s / (raw[i] as number)),
      ),
    );
    if (plan.gridengine.largeTasks > 0) {
      const large = plan.gridengine.largeTasks;
      log(`gridengine: one map of ${large} tasks (lease mode, 100 workers)`);
      const dbfile = join(workDir, `gridengine-large.sqlite`);
      const t0 = performance.now();
      const results = await map(
        (x: number) => x,
        (function* () {
          for (let i = 1; i <= large; i++) yield i;
        })(),
        { ...mapConfig(dbfile), workers: 100 },
      );
      const resolved = (performance.now() - t0) / 1000;
      const jobIds = jobIdsOf(dbfile);
      if (jobIds.length === 0) throw new Error(`map stored no Grid Engine job in ${dbfile}`);
      let gone = 0;
      for (const jobId of jobIds) gone = await untilGone(admin, jobId);
      figures.push(
        figure(
          `gridengine.${large}.timeS`,
          `map of ${large} tasks, lease mode with 100 workers: until map resolved (1 run)`,
          's',
          [resolved],
        ),
        figure(
          `gridengine.${large}.goneS`,
          `map of ${large} tasks, lease mode: until qstat -j says its jobs are gone (1 run)`,
          's',
          [(gone - t0) / 1000],
        ),
      );
      const wrong = results.filter((r, i) => r !== i + 1).length;
      checks.push({
        what: `gridengine map ${large} (lease mode): every result back in order`,
        ok: wrong === 0,
        ...(wrong === 0 ? {} : { detail: `${wrong} of ${large} results wrong` }),
      });
    }
    await removeRemoteDir(admin, dir, log);
  } finally {
    await admin.close();
  }
  return {
    figures,
    checks,
    settings: {
      runs,
      tasks: n,
      largeTasks: plan.gridengine.largeTasks,
      cluster: `${cluster.user}@${cluster.host}:${cluster.port}`,
      remoteDir: `~/${REMOTE_DIR}`,
      qstatPollMs: POLL_MS,
    },
  };
};
