/**
 * --straggler-factor F: when a worker counts as a straggler. The trainer records recent durations
 * (star: shard times, send to gradient back, of every worker; ring: step times); a duration past
 * F x their median is a straggler's. Nothing counts before `minSamples` durations are in, and the
 * threshold never goes below `floorMs`, so that tiny steps (a few ms, where a scheduler hiccup is
 * already 3x) do not trigger.
 */
export interface StragglerOptions {
  /** F: a duration past F x the recent median is a straggler's. Must be > 1. */
  factor: number;
  /** How many recent durations the median is over (default 20). */
  window?: number;
  /** Durations needed before anything counts (default 5). */
  minSamples?: number;
  /** The threshold is at least this (default 200 ms). */
  floorMs?: number;
}

export class StragglerThreshold {
  readonly factor: number;
  private readonly window: number;
  private readonly minSamples: number;
  private readonly floorMs: number;
  /** The last `window` durations, oldest first. */
  private readonly recent: number[] = [];

  constructor(opts: StragglerOptions) {
    if (!(opts.factor > 1) || !Number.isFinite(opts.factor)) throw new RangeError(`straggler factor must be a number > 1, got ${opts.factor}`);
    this.factor = opts.factor;
    this.window = opts.window ?? 20;
    this.minSamples = Math.min(opts.minSamples ?? 5, this.window);
    this.floorMs = opts.floorMs ?? 200;
    if (!Number.isInteger(this.window) || this.window < 1) throw new RangeError(`straggler window must be an integer >= 1, got ${opts.window}`);
  }

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.recent.push(ms);
    if (this.recent.length > this.window) this.recent.shift();
  }

  /** The median of the recent durations; null before `minSamples` of them. */
  get medianMs(): number | null {
    const n = this.recent.length;
    if (n < this.minSamples || n === 0) return null;
    const sorted = [...this.recent].sort((a, b) => a - b);
    return n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  }

  /** max(F x median, floor): a duration past this is a straggler's; null while too few are known. */
  get thresholdMs(): number | null {
    const m = this.medianMs;
    return m === null ? null : Math.max(this.factor * m, this.floorMs);
  }
}
