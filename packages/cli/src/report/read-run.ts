/**
 * Reads the NDJSON a run printed with `--log-format json` (`ddp train ... --log-format json > RUN.ndjson`)
 * into the events `ddp report` plots. Every mistake in the file is a UsageError that names the file
 * (and the line): the user gave ddp the wrong file, or a file that is not a run's output.
 */
import * as fs from 'node:fs';
import { UsageError } from '../args.js';

export interface StepPoint {
  step: number;
  epoch: number;
  loss: number;
  samples: number;
}

export interface EpochPoint {
  epoch: number;
  trainLoss: number | undefined;
  testLoss: number | undefined;
  testAccuracy: number | undefined;
  seconds: number | undefined;
}

/** What the run said about itself: the start event, and the done event's figures. */
export interface RunSummary {
  workers: number | undefined;
  allreduce: string | undefined;
  backend: string | undefined;
  batchSize: number | undefined;
  samplesPerSec: number | undefined;
  testAccuracy: number | undefined;
  /** Mean ms per step by phase, as the run measured them (averaged over its workers). */
  breakdown: Record<string, number> | undefined;
}

export interface RunEvents {
  file: string;
  steps: StepPoint[];
  epochs: EpochPoint[];
  summary: RunSummary;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Parses the lines of a run's NDJSON output (`file` is only for the messages). */
export function parseRunEvents(text: string, file: string): RunEvents {
  if (text.trim() === '') throw new UsageError(`${file} is empty (expected the output of ddp train --log-format json)`);
  const steps: StepPoint[] = [];
  const epochs: EpochPoint[] = [];
  const summary: RunSummary = {
    workers: undefined,
    allreduce: undefined,
    backend: undefined,
    batchSize: undefined,
    samplesPerSec: undefined,
    testAccuracy: undefined,
    breakdown: undefined,
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${file}:${i + 1}`;
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch {
      throw new UsageError(`${where}: not JSON (expected one event per line, as ddp train --log-format json prints): ${line.length > 60 ? `${line.slice(0, 60)}...` : line}`);
    }
    if (typeof e !== 'object' || e === null || Array.isArray(e) || typeof (e as { event?: unknown }).event !== 'string') {
      throw new UsageError(`${where}: not a ddp event (a JSON object with an "event" field)`);
    }
    const ev = e as Record<string, unknown>;
    switch (ev.event) {
      case 'start':
        summary.workers = num(ev.workers) ?? summary.workers;
        summary.allreduce = typeof ev.allreduce === 'string' ? ev.allreduce : summary.allreduce;
        summary.backend = typeof ev.backend === 'string' ? ev.backend : summary.backend;
        summary.batchSize = num(ev.batchSize) ?? summary.batchSize;
        break;
      case 'step': {
        const step = num(ev.step);
        const loss = num(ev.loss);
        if (step === undefined || loss === undefined) throw new UsageError(`${where}: a step event needs numbers step and loss`);
        steps.push({ step, epoch: num(ev.epoch) ?? 0, loss, samples: num(ev.samples) ?? summary.batchSize ?? 0 });
        break;
      }
      case 'epoch': {
        const epoch = num(ev.epoch);
        if (epoch === undefined) throw new UsageError(`${where}: an epoch event needs a number epoch`);
        epochs.push({ epoch, trainLoss: num(ev.trainLoss), testLoss: num(ev.testLoss), testAccuracy: num(ev.testAccuracy), seconds: num(ev.seconds) });
        break;
      }
      case 'done': {
        summary.workers = num(ev.workers) ?? summary.workers;
        summary.backend = typeof ev.backend === 'string' ? ev.backend : summary.backend;
        summary.samplesPerSec = num(ev.samplesPerSec);
        summary.testAccuracy = num(ev.testAccuracy);
        const b = ev.breakdown;
        if (typeof b === 'object' && b !== null && !Array.isArray(b)) {
          const phases = Object.entries(b).filter((kv): kv is [string, number] => num(kv[1]) !== undefined);
          if (phases.length > 0) summary.breakdown = Object.fromEntries(phases);
        }
        break;
      }
      default:
        break; // worker_joined, ring_formed, checkpoint, ...: not plotted
    }
  }
  if (steps.length === 0) throw new UsageError(`${file} has no step events (is it the output of ddp train --log-format json?)`);
  return { file, steps, epochs, summary };
}

/** Reads and parses a run's NDJSON file. */
export function readRunEvents(file: string): RunEvents {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new UsageError(`cannot read ${file}: ${why}`);
  }
  return parseRunEvents(text, file);
}
