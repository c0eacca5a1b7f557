import { describe, expect, it } from 'vitest';
import type { DdpEvent } from './events.js';
import { ProgressBar } from './progress-bar.js';
import { Reporter } from './reporter.js';
import { RunProgress } from './run-progress.js';

/** A stream that records what is written; a terminal or a pipe. */
function stream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = { isTTY, columns: 200, text: '', write(chunk: string) { s.text += chunk; return true; } };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

const start: DdpEvent = { event: 'start', backend: 'wasm', workers: 2, dataset: 'mnist', epochs: 2, batchSize: 64, seed: 1, trainSamples: 640, testSamples: 100, totalSteps: 20, stepsPerEpoch: 10 };
const step = (n: number, loss = 0.5): DdpEvent => ({ event: 'step', step: n, epoch: n <= 10 ? 1 : 2, loss, samples: 64 });

describe('the live line of a run', () => {
  it('on a terminal: redrawn in place from the first step, with epoch, step/total, loss, samples/s, workers and ETA', () => {
    let now = 0;
    const tty = stream(true);
    const p = new RunProgress(new ProgressBar(tty), { now: () => now });
    p.event(start);
    for (let n = 1; n <= 5; n++) {
      now = n * 100; // a step every 100 ms: 640 samples/s
      p.event(step(n, 1 / n));
      (p as unknown as { bar: { lastDraw: number } }).bar.lastDraw = 0; // let every step draw (the bar limits frames to 20/s)
    }
    const frames = tty.text.split('\r\x1b[2K').filter(Boolean);
    expect(frames.length).toBe(5);
    expect(frames[0]).toContain('epoch 1/2 step 1/20 loss 1.0000');
    expect(frames.at(-1)).toMatch(/epoch 1\/2 step 5\/20 loss 0\.2000 640 samples\/s 2 workers ETA 1s$/);
    p.event({ event: 'worker_lost', rank: 1, step: 6, code: 'DDP_CLOSED', reason: 'closed', workers: 1 });
    now = 600;
    p.event(step(6));
    expect(tty.text.split('\r\x1b[2K').at(-1)).toContain(' 1 worker ETA');
  });

  it('on a pipe: a plain line at most every few seconds, nothing redrawn', () => {
    let now = 0;
    const lines: string[] = [];
    const pipe = stream(false);
    const p = new RunProgress(new ProgressBar(pipe), { now: () => now, plain: (l) => lines.push(l), plainEveryMs: 1000 });
    p.event(start);
    for (let n = 1; n <= 20; n++) {
      now = n * 250;
      p.event(step(n));
    }
    expect(pipe.text).toBe('');
    // Steps at 0.25 s ... 5 s: the first, then one a second.
    expect(lines.map((l) => l.match(/step (\d+)\//)![1])).toEqual(['1', '5', '9', '13', '17']);
  });

  it('the text reporter prints events as lines and the done event with the time per step and the accuracy', () => {
    const out = stream(false);
    const r = new Reporter('text', out, stream(false), '[c] ');
    r.event({ event: 'done', steps: 20, workers: 2, backend: 'wasm', testLoss: 0.1, testAccuracy: 0.975, samplesPerSec: 1000, wallSeconds: 3, trainSeconds: 2, breakdown: { compute: 30, allreduce: 2 } });
    expect(out.text.split('\n').filter(Boolean)).toEqual([
      '[c] done: 20 steps, test loss 0.1000, test accuracy 97.50%, 1000 samples/s, 3.0 s wall (backend wasm, 2 worker(s))',
      '[c] per step: compute 30.0 ms, allreduce 2.0 ms',
      '[c] test accuracy: 97.50%',
    ]);
  });
});
