/**
 * A complete custom backend, the example of BACKENDS.md: it runs tasks over SSH on a fixed list
 * of hosts, with no scheduler at all. Each task is a `node` process started with `nohup` in its
 * own session, round-robin over the hosts; a small shell wrapper writes the task's exit status
 * to a file when it ends, which is how the backend later says why a task died.
 *
 * Use it like a built-in backend:
 *
 * ```ts
 * const backend = sshHosts({ hosts: [{ host: 'node1' }, { host: 'node2' }] });
 * const squares = await map((x: number) => x * x, [1, 2, 3], { backend });
 * ```
 */
import { Deployer, type DeployerOptions, shellQuote } from '@sheepdog/deployer';
import { jobFile } from '@sheepdog/job-file';
import type { Backend, JobSpec, Submission, TaskReport } from 'sheepdog';

/** Options of the {@link sshHosts} backend. */
export interface SshHostsOptions {
  /** The hosts to run on, each as `new Deployer()` takes it; tasks go round-robin over them. */
  readonly hosts: readonly DeployerOptions[];
  /**
   * Remote folder for job files, task logs and exit statuses, relative to the remote home.
   * @default '.sheepdog'
   */
  readonly directory?: string;
  /**
   * Node.js on the hosts.
   * @default '/usr/bin/node'
   */
  readonly node?: string;
}

/** What a submission remembers per host, in `Submission.meta`: plain JSON, so any process can re-attach. */
interface HostTasks {
  /** Position of the host in `options.hosts`. */
  readonly host: number;
  /** The job file's path without `.cjs`; task k logs to `<base>.<k>.log`, its status to `<base>.<k>.exit`. */
  readonly base: string;
  /** `[job index, pid]` of each task: the pid leads the task's own session and process group. */
  readonly tasks: ReadonlyArray<readonly [number, number]>;
}

function hostsOf(submission: Submission): HostTasks[] {
  return (submission.meta?.hosts as HostTasks[] | undefined) ?? [];
}

/** Exit status → words; the wrapper shell reports a signal as 128 + its number. */
function describeStatus(status: number): string {
  if (status === 137) return 'killed by SIGKILL (exit status 137)';
  if (status > 128) return `killed by signal ${status - 128} (exit status ${status})`;
  return `exit status ${status}`;
}

/**
 * Runs each task as a detached `node` process on one of a fixed list of SSH hosts.
 * `status` asks each host which task processes still run, `explain` reads their exit
 * statuses, and `cancel` kills their process groups.
 */
export function sshHosts(options: SshHostsOptions): Backend {
  if (options.hosts.length === 0) throw new Error('[sheepdog] [ssh-hosts] give at least one host');
  const deployers = options.hosts.map((host) => new Deployer(host));
  const directory = options.directory ?? '.sheepdog';
  const node = options.node ?? '/usr/bin/node';

  /** Runs a shell script on host `h`, sent on stdin so that its length is not limited. */
  async function script(h: number, lines: readonly string[]): Promise<string> {
    const deployer = deployers[h];
    if (deployer === undefined) {
      throw new Error(
        `[sheepdog] [ssh-hosts] the job names host ${h}, but only ${deployers.length} are configured`,
      );
    }
    const result = await deployer.exec('sh -s', { stdin: `${lines.join('\n')}\n` });
    if (result.code !== 0) {
      throw new Error(
        `[sheepdog] [ssh-hosts] a command failed on ${options.hosts[h]?.host} (exit ${result.code}): ${result.stderr.trim()}`,
      );
    }
    return result.stdout;
  }

  return {
    name: 'ssh-hosts',

    async submit(spec: JobSpec): Promise<Submission> {
      const submittedAt = Date.now();
      // Round-robin: the i-th index of the job goes to host i mod n.
      const share = deployers.map((_, h) =>
        spec.indices.filter((_, i) => i % deployers.length === h),
      );
      const hosts: HostTasks[] = [];
      for (const [h, indices] of share.entries()) {
        if (indices.length === 0) continue;
        const text = jobFile({
          url: spec.url,
          token: spec.token,
          requestId: spec.requestId,
          // The task id is the job index itself (SHEEPDOG_TASK_ID), so no index mapping is needed.
          nArgs: indices.length,
          shell: node,
          directivePrefix: null,
        });
        const fileName = `sheepdog-${spec.requestId}-${submittedAt}-h${h}.cjs`;
        // deploy() creates the folder (0700) and the file (0600): it holds the request's token.
        const path = await (deployers[h] as Deployer).deploy(
          text,
          spec.requestId,
          directory,
          fileName,
        );
        const base = path.slice(0, -'.cjs'.length);
        // setsid gives each task its own process group, so cancel can kill node with its shell;
        // the shell stays behind node to record how it ended.
        const lines = indices.map((k) => {
          const wrapper = `${shellQuote(node)} ${shellQuote(path)} >${shellQuote(`${base}.${k}.log`)} 2>&1; echo $? >${shellQuote(`${base}.${k}.exit`)}`;
          return `SHEEPDOG_TASK_ID=${k} nohup setsid sh -c ${shellQuote(wrapper)} </dev/null >/dev/null 2>&1 & p=$!; echo ${k} $p; pids="$pids $p"`;
        });
        // $! leads its own session only once setsid() has run in it: a cancel before that would
        // kill no group and leave the task running. So wait (5 s at most) until each task is
        // the leader of its session, or gone.
        lines.push(
          'n=0; for p in $pids; do while [ $n -lt 500 ] && kill -0 $p 2>/dev/null && [ "$(ps -o sid= -p $p | tr -d \' \')" != "$p" ]; do n=$((n + 1)); sleep 0.01; done; done',
        );
        const out = await script(h, lines);
        const tasks = out
          .trim()
          .split('\n')
          .map((line) => line.split(' ').map(Number) as [number, number]);
        hosts.push({ host: h, base, tasks });
      }
      return {
        backend: 'ssh-hosts',
        jobId: `${spec.requestId}-${submittedAt}`,
        indices: [...spec.indices],
        submittedAt,
        meta: { hosts },
      };
    },

    async status(submission: Submission): Promise<TaskReport> {
      const active = new Set<number>();
      for (const { host, base, tasks } of hostsOf(submission)) {
        // A task runs while its shell lives and has not written the exit status yet.
        const lines = tasks.map(
          ([k, pid]) =>
            `[ -e ${shellQuote(`${base}.${k}.exit`)} ] || ! kill -0 ${pid} 2>/dev/null || echo ${k}`,
        );
        const out = await script(host, [...lines, 'true']);
        for (const word of out.split('\n')) if (word !== '') active.add(Number(word));
      }
      return { active };
    },

    async explain(
      submission: Submission,
      indices: readonly number[],
    ): Promise<ReadonlyMap<number, string>> {
      const wanted = new Set(indices);
      const reasons = new Map<number, string>();
      for (const { host, base, tasks } of hostsOf(submission)) {
        const mine = tasks.filter(([k]) => wanted.has(k));
        if (mine.length === 0) continue;
        const lines = mine.map(
          ([k]) => `printf '%s %s\\n' ${k} "$(cat ${shellQuote(`${base}.${k}.exit`)} 2>/dev/null)"`,
        );
        for (const line of (await script(host, lines)).trim().split('\n')) {
          const [k, status] = line.split(' ');
          if (status === undefined || status === '') {
            // No status: the shell died with the task (cancel, a reboot), so nobody wrote one.
            reasons.set(Number(k), 'the task and its shell were killed before the task ended');
          } else
            reasons.set(
              Number(k),
              `the task ended without reporting: ${describeStatus(Number(status))}`,
            );
        }
      }
      return reasons;
    },

    async cancel(submission: Submission): Promise<void> {
      for (const { host, tasks } of hostsOf(submission)) {
        // A negative pid names the process group: node and its shell. One kill per task, as an
        // ended one is an error that must not stop the others. (`kill -s KILL -- -pid` is the
        // POSIX spelling, but dash, Debian's sh, refuses both `--` and `-s` before a group.)
        const lines = tasks.map(([, pid]) => `kill -KILL -${pid} 2>/dev/null`);
        await script(host, [...lines, 'true']);
      }
    },

    async dispose(): Promise<void> {
      await Promise.all(deployers.map((deployer) => deployer.close()));
    },
  };
}
