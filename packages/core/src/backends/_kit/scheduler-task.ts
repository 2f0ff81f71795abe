/** One array task as a scheduler's status command lists it (`qstat -g d`, `squeue -r`). */
export interface SchedulerTask {
  /** The scheduler's job id. */
  readonly jobId: string;
  /** The array task id. */
  readonly taskId: number;
  /** The scheduler's state: letters such as `r` or `Eqw` (Grid Engine), words such as `RUNNING` (SLURM). */
  readonly state: string;
}
