/**
 * The coordinator's Prometheus metrics, read from the same events as every other view (the NDJSON
 * lines, the text output): the CLI subscribes `observe` to its Reporter, and GET /metrics serves
 * `text()`. Nothing here reaches into the trainers.
 *
 * Cost: one step event costs a few counter increments, one gauge set and a histogram observation per
 * rank (label children are cached per rank: no string or object per step).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DdpEvent } from '@ddp/core';

export interface MetricsOptions {
  /** ddp's version, for ddp_build_info. */
  version: string;
  /** The backend, when known before the start event (the start event's backend replaces it). */
  backend?: string;
  /** The workers the job waits for before training: /readyz says how many joined so far. */
  workers?: number;
  /** Node's default process metrics (process_*, nodejs_*); default true. */
  defaultMetrics?: boolean;
  /** Seconds, monotonic; tests pass their own. */
  clock?: () => number;
}

const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
const STEP_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const PART_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export class Metrics {
  readonly registry = new Registry();
  private readonly steps: Counter;
  private readonly samples: Counter;
  private readonly bytesSent: Counter;
  private readonly failures: Counter<'code'>;
  private readonly stragglers: Counter;
  private readonly stepDuration: Histogram;
  private readonly allreduceDuration: Histogram;
  private readonly compute: Histogram<'rank'>;
  private readonly workers: Gauge;
  private readonly trainLoss: Gauge;
  private readonly testAccuracy: Gauge;
  private readonly buildInfo: Gauge<'version' | 'node' | 'backend'>;
  private readonly computeByRank: Array<ReturnType<Histogram<'rank'>['labels']>> = [];
  private readonly clock: () => number;
  /** When the last step was committed (or training resumed after a pause); -1: no step to time from. */
  private lastStepAt = -1;
  private backend: string;
  private joined = 0;
  private phase: 'waiting' | 'training' | 'over' = 'waiting';

  constructor(private readonly opts: MetricsOptions) {
    this.clock = opts.clock ?? (() => performance.now() / 1000);
    this.backend = opts.backend ?? 'unknown';
    const registers = [this.registry];
    this.steps = new Counter({ name: 'ddp_steps_total', help: 'Optimizer steps committed.', registers });
    this.samples = new Counter({ name: 'ddp_samples_total', help: 'Training samples in the committed steps.', registers });
    this.bytesSent = new Counter({ name: 'ddp_bytes_sent_total', help: 'Gradient bytes the workers sent in the allreduce (all workers together).', registers });
    this.failures = new Counter({ name: 'ddp_worker_failures_total', help: 'Workers lost, by stable code (DDP_CLOSED, DDP_TIMEOUT, ...).', labelNames: ['code'], registers });
    this.stragglers = new Counter({ name: 'ddp_stragglers_total', help: 'Straggler events (star: shards also given to a backup worker; ring: members that held up a step).', registers });
    this.stepDuration = new Histogram({ name: 'ddp_step_duration_seconds', help: 'Wall time between two committed steps, as the coordinator sees them (pauses for evaluation excluded).', buckets: STEP_BUCKETS, registers });
    this.allreduceDuration = new Histogram({ name: 'ddp_allreduce_duration_seconds', help: 'Allreduce time per step, waiting for slower workers excluded (mean over the workers).', buckets: PART_BUCKETS, registers });
    this.compute = new Histogram({ name: 'ddp_worker_compute_seconds', help: 'Gradient compute time per step, by worker rank.', labelNames: ['rank'], buckets: PART_BUCKETS, registers });
    this.workers = new Gauge({ name: 'ddp_workers', help: 'Workers connected to the job.', registers });
    this.trainLoss = new Gauge({ name: 'ddp_train_loss', help: 'Mean training loss of the last committed step (NaN before the first).', registers });
    this.testAccuracy = new Gauge({ name: 'ddp_test_accuracy', help: 'Test accuracy of the last evaluation, 0..1 (NaN before the first).', registers });
    this.buildInfo = new Gauge({ name: 'ddp_build_info', help: 'Always 1; the labels say which ddp, Node and compute backend run the job.', labelNames: ['version', 'node', 'backend'], registers });
    // NaN until there is a figure: a 0 would read as a real loss or accuracy.
    this.trainLoss.set(NaN);
    this.testAccuracy.set(NaN);
    this.setBuildInfo();
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // prom-client names three gauges *_total, which `promtool check metrics` rejects (only counters
      // end in _total); their per-type twins (nodejs_active_handles{type}...) say the same.
      for (const name of LINT_FAILING_DEFAULTS) this.registry.removeSingleMetric(name);
    }
  }

  /** Takes one event (subscribe this to the Reporter). */
  observe(e: DdpEvent): void {
    switch (e.event) {
      case 'start':
        this.workers.set(e.workers);
        this.phase = 'training';
        this.lastStepAt = this.clock();
        if (e.backend !== this.backend) {
          this.backend = e.backend;
          this.setBuildInfo();
        }
        return;
      case 'worker_joined':
        this.joined = Math.max(this.joined, e.workers);
        this.workers.set(e.workers);
        return;
      case 'worker_lost':
        this.workers.set(e.workers);
        this.failures.inc({ code: e.code });
        return;
      case 'ring_formed':
        this.lastStepAt = this.clock(); // forming a ring is no step's time
        return;
      case 'step': {
        const now = this.clock();
        if (this.lastStepAt >= 0) this.stepDuration.observe(now - this.lastStepAt);
        this.lastStepAt = now;
        this.steps.inc();
        this.samples.inc(e.samples);
        this.trainLoss.set(e.loss);
        if (e.bytesSent !== undefined) this.bytesSent.inc(e.bytesSent);
        const ranks = e.ranks;
        if (ranks && ranks.length > 0) {
          let allreduceMs = 0;
          for (const r of ranks) {
            allreduceMs += r.allreduceMs;
            this.computeOf(r.rank).observe(r.computeMs / 1000);
          }
          this.allreduceDuration.observe(allreduceMs / ranks.length / 1000);
        }
        return;
      }
      case 'epoch':
        this.testAccuracy.set(e.testAccuracy);
        this.lastStepAt = this.clock(); // the evaluation was no step's time
        return;
      case 'saved':
        this.lastStepAt = this.clock(); // saving was no step's time
        return;
      case 'done':
        this.testAccuracy.set(e.testAccuracy);
        this.workers.set(e.workers);
        this.phase = 'over';
        return;
      case 'error':
        this.phase = 'over';
        return;
      case 'straggler':
        this.stragglers.inc();
        return;
      case 'stall':
      case 'evaluate':
        return;
    }
  }

  /** What GET /readyz answers: null when training has started, else why not (one line). */
  readiness(): string | null {
    if (this.phase === 'training') return null;
    if (this.phase === 'over') return 'not ready: the job is over';
    const want = this.opts.workers;
    return `not ready: waiting for workers (${this.joined}${want !== undefined ? `/${want}` : ''} joined)`;
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private computeOf(rank: number) {
    let h = this.computeByRank[rank];
    if (!h) {
      h = this.compute.labels(String(rank));
      this.computeByRank[rank] = h;
    }
    return h;
  }

  private setBuildInfo(): void {
    this.buildInfo.reset();
    this.buildInfo.set({ version: this.opts.version, node: process.version, backend: this.backend }, 1);
  }
}
