/**
 * Limits on the scheduler commands a cluster backend runs. A command that hangs (a stuck
 * qmaster or slurmctld, a dead connection) must not stall the waiting: it fails after this long,
 * and core asks again later. Submitting is not bounded: sbatch retries by itself while
 * slurmctld is busy, and giving up could leave a job nobody tracks.
 */
export const COMMAND_LIMIT: { readonly timeoutMs: number } = { timeoutMs: 60_000 };

/**
 * Scheduler job ids repeat (after a qmaster crash, or a SLURM database reset): accounting records
 * submitted earlier than this before a submission are some other job's. It is slack for clock
 * skew between this machine and the cluster.
 */
export const CLOCK_SKEW_MS = 60_000;
