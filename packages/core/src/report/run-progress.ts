/**
 * The live line of a run, drawn from its events alone (start, worker_joined/lost, step, epoch, done),
 * so that the coordinator on a terminal and `ddp train`'s launcher (which reads the coordinator's
 * NDJSON) show the same thing: epoch, step/total, loss, samples/s, workers and ETA.
 *
 * On a terminal the line is redrawn in place (ProgressBar: at most ~20 frames/s, drawn synchronously
 * on an event, so no timer keeps a process alive); on a pipe it becomes a plain line every few
 * seconds. We keep our own bar rather than cli-progress: that one redraws from a timer that must be
 * stopped, and it cannot clear its line for ordinary output written to stdout on the same terminal.
 */
import type { DdpEvent } from './events.js';
import type { ProgressBar } from './progress-bar.js';

export interface RunProgressOptions {
  /** A plain line for a pipe, at most every `plainEveryMs` (default 5000). */
  plain?: (line: string) => void;
  plainEveryMs?: number;
  /** Steps over which samples/s and the ETA are measured (default 50). */
  window?: number;
  now?: () => number;
}

const duration = (s: number): string => {
  if (!Number.isFinite(s) || s < 0) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
};

export class RunProgress {
  private totalSteps = 0;
  private epochs = 0;
  private workers = 0;
  /** Arrival time and samples of the latest steps (a ring buffer of `window`). */
  private readonly times: number[] = [];
  private readonly samples: number[] = [];
  private lastPlain = -Infinity;
  private readonly now: () => number;

  constructor(
    private readonly bar: ProgressBar,
    private readonly opts: RunProgressOptions = {},
  ) {
    this.now = opts.now ?? (() => performance.now());
  }

  event(e: DdpEvent): void {
    switch (e.event) {
      case 'start':
        this.totalSteps = e.totalSteps ?? 0;
        this.epochs = e.epochs;
        this.workers = e.workers;
        return;
      case 'worker_joined':
      case 'worker_lost':
        this.workers = e.workers;
        return;
      case 'step':
        this.onStep(e.step, e.epoch, e.loss, e.samples);
        return;
      case 'epoch':
      case 'done':
      case 'error':
        this.bar.clear();
        this.times.length = 0;
        this.samples.length = 0;
        return;
    }
  }

  /** The line as it stands (for tests and for the plain output). */
  line(step: number, epoch: number, loss: number): string {
    const rate = this.rate();
    const eta = rate > 0 && this.totalSteps > 0 ? duration(((this.totalSteps - step) * this.meanSamples()) / rate) : '?';
    const total = this.totalSteps > 0 ? `/${this.totalSteps}` : '';
    const workers = this.workers > 0 ? ` ${this.workers} worker${this.workers > 1 ? 's' : ''}` : '';
    return `epoch ${epoch}/${this.epochs} step ${step}${total} loss ${loss.toFixed(4)} ${Math.round(rate).toLocaleString('en-US')} samples/s${workers} ETA ${eta}`;
  }

  private onStep(step: number, epoch: number, loss: number, samples: number): void {
    const t = this.now();
    const w = this.opts.window ?? 50;
    this.times.push(t);
    this.samples.push(samples);
    if (this.times.length > w) {
      this.times.shift();
      this.samples.shift();
    }
    if (this.bar.enabled) {
      const frac = this.totalSteps > 0 ? step / this.totalSteps : 0;
      this.bar.draw(frac, this.line(step, epoch, loss), step === this.totalSteps);
    } else if (this.opts.plain && t - this.lastPlain >= (this.opts.plainEveryMs ?? 5000)) {
      this.lastPlain = t;
      this.opts.plain(this.line(step, epoch, loss));
    }
  }

  /** Samples per second over the window (0 until two steps are in). */
  private rate(): number {
    const n = this.times.length;
    if (n < 2) return 0;
    let s = 0;
    for (let i = 1; i < n; i++) s += this.samples[i]!;
    const dt = (this.times[n - 1]! - this.times[0]!) / 1000;
    return dt > 0 ? s / dt : 0;
  }

  private meanSamples(): number {
    return this.samples.length ? this.samples.reduce((a, b) => a + b, 0) / this.samples.length : 0;
  }
}
