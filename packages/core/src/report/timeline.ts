/**
 * `--timeline FILE`: the run as Chrome's Trace Event Format (open it in Perfetto or chrome://tracing),
 * built from the run's events alone, like every other view. One track per worker rank and one for
 * the coordinator, all on the coordinator's clock:
 *
 *   - a worker's step is laid out backwards from the moment the coordinator committed it: gathering
 *     the shard's data, forward and backward, the allreduce (the transfer), waiting for the slower
 *     workers, the optimizer (the durations the worker measured, in the step event's `ranks`), then
 *     whatever else its cycle held (message handling, scheduling), so a step's spans fill the time
 *     from the previous commit to this one;
 *   - the coordinator's track has the evaluations (from the last step of an epoch to the epoch
 *     event) and the checkpoints (to the checkpoint event).
 * Aligning on the coordinator's clock needs no clock offset: a worker reports its step as soon as it
 * is applied, so the commit time is the end of every member's step, give or take the transit time of
 * a message on the network (well under a millisecond on a LAN).
 */
import { writeFileSync } from 'node:fs';
import type { DdpEvent, RankTiming } from './events.js';

/** One complete event ('X') of the trace format; times in microseconds. */
export interface TraceSpan {
  name: string;
  cat: string;
  ph: 'X';
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

interface TraceMeta {
  name: 'process_name' | 'thread_name' | 'thread_sort_index';
  ph: 'M';
  pid: number;
  tid: number;
  args: Record<string, unknown>;
}

/** The coordinator's track; worker rank r is track r + 1. */
const COORDINATOR_TID = 0;
const PID = 1;

export class TraceTimeline {
  private readonly spans: TraceSpan[] = [];
  private readonly tracks = new Set<number>();
  private lastCommit = -1;
  private lastMark = -1;
  private readonly now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    // Microseconds since the process started (performance.now() is in ms).
    this.now = opts.now ?? (() => performance.now() * 1000);
  }

  /** Takes one event of the run (subscribe it to the reporter). */
  event(e: DdpEvent): void {
    const t = this.now();
    switch (e.event) {
      case 'start':
      case 'ring_formed':
        this.lastCommit = t; // a run (or a new ring) starts now: the next step's time begins here
        return;
      case 'step':
        if (this.lastCommit >= 0 && e.ranks) this.step(e.step, e.ranks, this.lastCommit, t);
        this.lastCommit = t;
        this.lastMark = t;
        return;
      case 'epoch':
        if (this.lastMark >= 0) this.span(COORDINATOR_TID, 'evaluation', 'coordinator', this.lastMark, t, { epoch: e.epoch, testAccuracy: e.testAccuracy });
        this.lastMark = t;
        this.lastCommit = t;
        return;
      case 'saved':
        if (this.lastMark >= 0) this.span(COORDINATOR_TID, 'save', 'coordinator', this.lastMark, t, { step: e.step, path: e.path });
        this.lastMark = t;
        this.lastCommit = t;
        return;
      case 'checkpoint':
        // Written beside the training: a span of its own length, ending now; the steps' clock goes on.
        this.span(COORDINATOR_TID, 'checkpoint', 'coordinator', t - e.seconds * 1e6, t, { step: e.step, path: e.path, bytes: e.bytes });
        return;
      default:
        return;
    }
  }

  /** The spans so far (tests read them). */
  get traceSpans(): readonly TraceSpan[] {
    return this.spans;
  }

  /** The whole trace, as Perfetto and chrome://tracing open it. */
  toJSON(): { traceEvents: Array<TraceSpan | TraceMeta>; displayTimeUnit: 'ms' } {
    const meta: TraceMeta[] = [{ name: 'process_name', ph: 'M', pid: PID, tid: 0, args: { name: 'ddp run' } }];
    for (const tid of [COORDINATOR_TID, ...[...this.tracks].sort((a, b) => a - b)]) {
      meta.push({ name: 'thread_name', ph: 'M', pid: PID, tid, args: { name: tid === COORDINATOR_TID ? 'coordinator' : `worker rank ${tid - 1}` } });
      meta.push({ name: 'thread_sort_index', ph: 'M', pid: PID, tid, args: { sort_index: tid } });
    }
    return { traceEvents: [...meta, ...this.spans], displayTimeUnit: 'ms' };
  }

  write(file: string): void {
    writeFileSync(file, JSON.stringify(this.toJSON()));
  }

  private step(step: number, ranks: readonly RankTiming[], from: number, to: number): void {
    for (const r of ranks) {
      const tid = r.rank + 1;
      this.tracks.add(tid);
      // The step on this worker, as one span, and its phases inside it, laid end to end up to `to`.
      const phases: Array<[string, number]> = [
        ['gather data', r.prepareMs ?? 0],
        ['forward + backward', r.computeMs],
        ['allreduce', r.allreduceMs],
        ['waiting', r.waitingMs],
        ['optimizer', r.optimizerMs ?? 0],
      ];
      const busy = phases.reduce((s, [, ms]) => s + ms * 1000, 0);
      // A step cannot start before the previous one ended: phases that measured more than the
      // time between commits (message timing jitter) are squeezed proportionally to fit.
      const scale = busy > to - from && busy > 0 ? (to - from) / busy : 1;
      const start = Math.max(from, to - busy * scale);
      this.span(tid, `step ${step}`, 'step', from, to, { step });
      let at = start;
      for (const [name, ms] of phases) {
        const dur = ms * 1000 * scale;
        if (dur <= 0) continue;
        this.span(tid, name, 'phase', at, at + dur, { step });
        at += dur;
      }
    }
  }

  private span(tid: number, name: string, cat: string, from: number, to: number, args?: Record<string, unknown>): void {
    this.spans.push({ name, cat, ph: 'X', ts: Math.round(from), dur: Math.max(0, Math.round(to - from)), pid: PID, tid, ...(args ? { args } : {}) });
  }
}
