/** Counts shown while waiting. */
export interface ProgressCounts {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly lost: number;
}

/** Prints progress to a stream: one rewritten line on a terminal, periodic plain lines elsewhere. */
export class ProgressLine {
  private lastPlain = 0;
  private lastText = '';
  private readonly started = Date.now();

  constructor(
    private readonly requestId: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 5000,
  ) {}

  /** Shows the current counts; cheap to call often. */
  update(counts: ProgressCounts, final = false): void {
    const secs = (Date.now() - this.started) / 1000;
    const finished = counts.done + counts.failed + counts.lost;
    const rate = secs > 0 ? finished / secs : 0;
    const text =
      `[sheepdog] request ${this.requestId}: ${finished}/${counts.total} finished ` +
      `(${counts.done} done, ${counts.failed} failed, ${counts.lost} lost), ${rate.toFixed(1)} tasks/s`;
    if (this.stream.isTTY) {
      if (text === this.lastText && !final) return;
      this.lastText = text;
      this.stream.write(`\r${text}\x1b[K${final ? '\n' : ''}`);
      return;
    }
    const now = Date.now();
    if (final || now - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = now;
      this.stream.write(`${text}\n`);
    }
  }
}
