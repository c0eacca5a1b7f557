import type { DdpEvent } from './events.js';
import { ProgressBar } from './progress-bar.js';
import { RunProgress } from './run-progress.js';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const fmt = (x: number, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const ms = (x: number) => (x >= 10000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`);

/** One human line for an event in text mode, or null for events that only move the bar. */
export function describeEvent(e: DdpEvent): string | null {
  switch (e.event) {
    case 'start':
      return `ddp: backend ${e.backend}, ${e.workers === 0 ? 'single process' : `${e.workers} worker(s)`}, ${e.dataset} (${e.trainSamples} train / ${e.testSamples} test), ${e.epochs} epoch(s), batch ${e.batchSize}, seed ${e.seed}`;
    case 'worker_joined':
      return `worker ${e.rank} joined (${e.workers} connected${e.backend ? `, backend ${e.backend}` : ''}${e.rankHint ? `, ${e.rankHint.from}=${e.rankHint.index}` : ''})`;
    case 'step':
      return null;
    case 'epoch':
      return `epoch ${e.epoch}: train loss ${fmt(e.trainLoss)}, test loss ${fmt(e.testLoss)}, test accuracy ${pct(e.testAccuracy)} (${e.seconds.toFixed(1)} s)`;
    case 'worker_lost':
      return `worker ${e.rank} lost at step ${e.step}: ${e.code}: ${e.reason}; continuing with ${e.workers}`;
    case 'ring_formed':
      return e.generation === 0 ? null : `ring ${e.generation} formed for step ${e.step + 1}: ranks ${e.ranks.join(', ')}`;
    case 'straggler': {
      const who = `rank ${e.rank}${e.host ? ` (${e.host})` : ''}`;
      return e.backupRank >= 0
        ? `step ${e.step}: straggler ${who}: its shard out ${ms(e.waitedMs)} (median ${ms(e.medianMs)}); also given to rank ${e.backupRank}`
        : `step ${e.step}: straggler ${who}: the ring waited for it, the step took ${ms(e.waitedMs)} (median ${ms(e.medianMs)})`;
    }
    case 'stall':
      return `step ${e.step}: waiting ${(e.waitedMs / 1000).toFixed(0)} s for ${e.waitingFor.map((w) => `rank ${w.rank} (${w.host}, last: ${w.last}, ${(w.agoMs / 1000).toFixed(1)} s ago)`).join(', ')}`;
    case 'saved':
      return `saved model at step ${e.step} to ${e.path}`;
    case 'checkpoint':
      return `checkpoint at step ${e.step}: ${e.path} (${(e.bytes / 1e6).toFixed(1)} MB in ${e.seconds.toFixed(2)} s)`;
    case 'resumed':
      return `resumed from ${e.path}: ${e.step} step(s) done, continuing at step ${e.step + 1} (epoch ${e.epoch + 1})`;
    case 'membership':
      return null; // worker_joined / worker_lost already say it in words
    case 'paused':
      return `paused at step ${e.step}: ${e.workers} worker(s), at least ${e.minWorkers} needed (--min-workers)`;
    case 'coordinator_restarted':
      return `coordinator ended abnormally (${e.exit}): restarting it with --resume (restart ${e.restart} of ${e.maxRestarts})`;
    case 'done': {
      const b = e.breakdown ?? {};
      const perStep = Object.keys(b).length ? `\nper step: ${Object.entries(b).map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(', ')}` : '';
      return `done: ${e.steps} steps, test loss ${fmt(e.testLoss)}, test accuracy ${pct(e.testAccuracy)}, ${e.samplesPerSec.toFixed(0)} samples/s, ${e.wallSeconds.toFixed(1)} s wall (backend ${e.backend}, ${e.workers === 0 ? 'single process' : `${e.workers} worker(s)`})${perStep}\ntest accuracy: ${pct(e.testAccuracy)}`;
    }
    case 'evaluate':
      return `${e.model} on ${e.dataset} (${e.samples} test samples): loss ${fmt(e.testLoss)}, accuracy ${pct(e.testAccuracy)}`;
    case 'predict':
      return `${e.format === 'idx' ? `${e.input}[${e.index}]` : e.input}: ${e.top.map((t) => `${t.class} (${(t.probability * 100).toFixed(1)}%)`).join(', ')}`;
    case 'error':
      return `error: ${e.code ? `${e.code}: ` : ''}${e.message}`;
  }
}

/**
 * Where a command's output goes. json: events as NDJSON on stdout and nothing else there
 * (human notes go to stderr). text: readable lines on stdout and a progress bar on a terminal.
 */
export class Reporter {
  private readonly bar: ProgressBar;
  private readonly run: RunProgress;
  private listeners: Array<(e: DdpEvent) => void> = [];

  constructor(
    readonly format: LogFormat = 'text',
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WriteStream = process.stderr,
    /** Put before every text line (the launcher labels the coordinator's lines). */
    private readonly prefix = '',
  ) {
    this.bar = new ProgressBar(err);
    // On a pipe (no terminal to redraw on) the live line becomes a plain line every few seconds.
    this.run = new RunProgress(this.bar, { plain: (line) => this.out.write(`${this.prefix}${line}\n`) });
  }

  /**
   * Every event this reporter emits also goes to `listener` (metrics, dashboards), in both formats,
   * after it is written. Returns the function that unsubscribes it.
   */
  subscribe(listener: (e: DdpEvent) => void): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  event(e: DdpEvent): void {
    this.write(e);
    for (const l of this.listeners) l(e);
  }

  private write(e: DdpEvent): void {
    if (this.format === 'json') {
      this.out.write(`${JSON.stringify(e)}\n`);
      return;
    }
    this.run.event(e);
    const text = describeEvent(e);
    if (text !== null) {
      this.bar.clear();
      for (const line of text.split('\n')) this.out.write(`${this.prefix}${line}\n`);
    }
  }

  /** A note for people: stdout in text mode, stderr in json mode (stdout stays pure NDJSON). */
  info(message: string): void {
    this.bar.clear();
    (this.format === 'json' ? this.err : this.out).write(`${message}\n`);
  }

  progress(current: number, total: number, label: string, suffix = ''): void {
    this.bar.update(current, total, label, suffix);
  }

  endProgress(): void {
    this.bar.clear();
  }
}
