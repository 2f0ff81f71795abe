import cliProgress from 'cli-progress';
import type { TaskState } from 'sheepdog';

/** How progress is shown: `auto` is a bar on a terminal and plain lines elsewhere. */
export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none';

const PROGRESS_MODES: readonly ProgressMode[] = ['auto', 'bar', 'lines', 'none'];

/**
 * The `--progress` flag's mode (`auto` when not given); a bad value is appended to `problems`
 * and `auto` stands in for it.
 */
export function progressMode(flag: string | undefined, problems: string[]): ProgressMode {
  const mode = (flag ?? 'auto') as ProgressMode;
  if (PROGRESS_MODES.includes(mode)) return mode;
  problems.push(`--progress: expected one of ${PROGRESS_MODES.join(', ')}, got ${flag}`);
  return 'auto';
}

/** Task counts per state, as the storage reports them. */
export type StateCounts = Readonly<Record<TaskState, number>>;

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** @default 'auto' */
  readonly mode?: ProgressMode;
  /** @default process.stderr */
  readonly stream?: NodeJS.WriteStream;
  /**
   * Least time between two plain lines, in ms (a line is printed only when something changed).
   * @default 5000
   */
  readonly intervalMs?: number;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Shows how a request is getting on: a cli-progress bar (done/total, failed, lost, rate, ETA)
 * on a terminal, or a plain line at most every few seconds elsewhere, so logs stay readable.
 */
export class Progress {
  private readonly mode: Exclude<ProgressMode, 'auto'>;
  private readonly stream: NodeJS.WriteStream;
  private readonly intervalMs: number;
  private readonly started = Date.now();
  private bar: cliProgress.SingleBar | undefined;
  private lastLine = 0;
  private lastText = '';
  private counts: StateCounts | undefined;
  private paused = false;
  private baseline: number | undefined;

  constructor(
    private readonly requestId: number,
    options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    const mode = options.mode ?? 'auto';
    this.mode = mode === 'auto' ? (this.stream.isTTY ? 'bar' : 'lines') : mode;
    this.intervalMs = options.intervalMs ?? 5000;
  }

  private figures(c: StateCounts): {
    total: number;
    finished: number;
    rate: number;
    eta: string;
    extra: string;
  } {
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    const finished = c.done + c.failed + c.lost + c.cancelled;
    // Count from what was already finished when watching began (e.g. when serving a request
    // again), so the rate and ETA describe this stretch of work.
    this.baseline ??= finished;
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? Math.max(0, finished - this.baseline) / secs : 0;
    const eta =
      finished === total ? '0s' : rate > 0 ? formatSeconds((total - finished) / rate) : '?';
    const extra = c.cancelled > 0 ? `, ${c.cancelled} cancelled` : '';
    return { total, finished, rate, eta, extra };
  }

  private startBar(c: StateCounts): void {
    const f = this.figures(c);
    this.bar = new cliProgress.SingleBar(
      {
        format: `request ${this.requestId} [{bar}] {value}/{total} | {done} done, {failed} failed, {lost} lost{extra} | {rate} tasks/s | ETA {remaining}`,
        stream: this.stream,
        hideCursor: true,
        barsize: 30,
        fps: 5,
        noTTYOutput: !this.stream.isTTY,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(f.total, f.finished, this.payload(c));
  }

  private payload(c: StateCounts): Record<string, string | number> {
    const f = this.figures(c);
    return {
      done: c.done,
      failed: c.failed,
      lost: c.lost,
      extra: f.extra,
      rate: f.rate.toFixed(1),
      remaining: f.eta,
    };
  }

  private line(c: StateCounts): string {
    const f = this.figures(c);
    return (
      `[sheepdog] request ${this.requestId}: ${f.finished}/${f.total} finished ` +
      `(${c.done} done, ${c.failed} failed, ${c.lost} lost${f.extra}), ` +
      `${f.rate.toFixed(1)} tasks/s, ETA ${f.eta}`
    );
  }

  /** Shows the current counts; cheap to call often. */
  update(counts: StateCounts): void {
    this.counts = counts;
    if (this.mode === 'none' || this.paused) return;
    if (this.mode === 'bar') {
      if (this.bar === undefined) this.startBar(counts);
      else this.bar.update(this.figures(counts).finished, this.payload(counts));
      return;
    }
    const text = this.line(counts);
    const now = Date.now();
    if (text.replace(/, [\d.]+ tasks\/s.*$/, '') === this.lastText) return;
    if (this.lastLine !== 0 && now - this.lastLine < this.intervalMs) return;
    this.lastLine = now;
    this.lastText = text.replace(/, [\d.]+ tasks\/s.*$/, '');
    this.stream.write(`${text}\n`);
  }

  /** Takes the bar off the terminal, e.g. to ask a question, until {@link resume}. */
  pause(): void {
    this.paused = true;
    this.bar?.stop();
    this.bar = undefined;
  }

  /** Shows progress again after {@link pause}, from the next update on. */
  resume(): void {
    this.paused = false;
  }

  /** Shows the final counts and leaves the terminal clean. */
  stop(counts: StateCounts | undefined = this.counts): void {
    this.paused = false;
    if (counts === undefined || this.mode === 'none') return;
    if (this.mode === 'bar') {
      if (this.bar === undefined) this.startBar(counts);
      this.bar?.update(this.figures(counts).finished, this.payload(counts));
      this.bar?.stop();
      this.bar = undefined;
      return;
    }
    const text = this.line(counts);
    if (text.replace(/, [\d.]+ tasks\/s.*$/, '') !== this.lastText) this.stream.write(`${text}\n`);
  }
}
