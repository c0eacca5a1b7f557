/**
 * One `ddp train ... --log-format json` child process, as the scaling benchmarks run it: the step
 * events with their arrival times, the start and done events, and the figures of the done event.
 * A run that fails, ends without a done event or outlives its timeout is an error that names the
 * command, how it ended and its last stderr lines.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface StepArrival {
  step: number;
  samples: number;
  /** performance.now() when the event's line arrived. */
  at: number;
}

export interface TrainRun {
  /** `ddp` and its arguments, as run. */
  command: string[];
  arrivals: StepArrival[];
  done: Record<string, unknown>;
  start: Record<string, unknown> | undefined;
  wallSeconds: number;
}

/** What the done event (or, for the backend, the start event) says about a run. */
export interface DoneFigures {
  /** The run's own samples/s: training samples over training time, evaluation excluded. */
  reportedSamplesPerSec: number | undefined;
  trainSeconds: number | undefined;
  backend: string | undefined;
  /** Mean ms per step by phase, as the run measured them. */
  breakdown: Record<string, number> | undefined;
}

export async function runTrain(mainJs: string, trainArgs: readonly string[], o: { timeoutMs: number; batchSize: number }): Promise<TrainRun> {
  const args = ['train', ...trainArgs];
  const began = performance.now();
  const child = spawn(process.execPath, [mainJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const arrivals: StepArrival[] = [];
  let done: Record<string, unknown> | undefined;
  let start: Record<string, unknown> | undefined;
  const stderrTail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => {
    stderrTail.push(l);
    if (stderrTail.length > 30) stderrTail.shift();
  });
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const at = performance.now();
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(l);
    } catch {
      stderrTail.push(`(stdout) ${l}`);
      return;
    }
    if (e.event === 'step' && typeof e.step === 'number') arrivals.push({ step: e.step, samples: typeof e.samples === 'number' ? e.samples : o.batchSize, at });
    else if (e.event === 'done') done = e;
    else if (e.event === 'start') start = e;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
  const onSignal = () => child.kill('SIGKILL');
  process.once('SIGINT', onSignal);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  process.off('SIGINT', onSignal);
  if (code !== 0 || !done) {
    const why = signal ? `was killed (${signal}${signal === 'SIGKILL' ? `, over ${o.timeoutMs / 1000} s?` : ''})` : `exited with code ${code}`;
    throw new Error(`ddp ${args.join(' ')} ${why}${done ? '' : ' without a done event'}; its last stderr lines:\n  ${stderrTail.join('\n  ')}`);
  }
  return { command: ['ddp', ...args], arrivals, done, start, wallSeconds: (performance.now() - began) / 1000 };
}

export function doneFigures(run: TrainRun): DoneFigures {
  const { done, start } = run;
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  return {
    reportedSamplesPerSec: num(done.samplesPerSec),
    trainSeconds: num(done.trainSeconds),
    backend: typeof done.backend === 'string' ? done.backend : typeof start?.backend === 'string' ? start.backend : undefined,
    breakdown: typeof done.breakdown === 'object' && done.breakdown !== null ? (done.breakdown as Record<string, number>) : undefined,
  };
}
