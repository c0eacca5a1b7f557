/**
 * --timeline FILE: a real 2-worker run written as a Chrome trace. Every phase span nests in its
 * step's span on the worker's track, and the phases the workers measured add up to the step time the
 * coordinator saw (within 5%: the rest is message handling and scheduling, not measured as a phase).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { tmpDir } from './distributed-helpers.js';

interface Span { name: string; cat: string; ph: string; ts: number; dur: number; tid: number; args?: { step?: number } }

describe('ddp train --timeline', () => {
  it('writes a trace: a track per worker, phases nested in steps and adding up to them, evaluations on the coordinator\'s track', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'run.trace.json');
    const run = await runCli(['train', '--workers', '2', '--max-steps', '60', '--epochs', '2', '--limit-train', '1920', '--limit-test', '100', '--backend', 'wasm', '--timeline', file, '--log-format', 'json'], { json: true, timeoutMs: 180_000 });
    expect(run.code, run.stderr).toBe(0);
    const trace = JSON.parse(fs.readFileSync(file, 'utf8')) as { traceEvents: Span[] };
    const names = trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => (e as unknown as { args: { name: string } }).args.name);
    expect(names).toEqual(['coordinator', 'worker rank 0', 'worker rank 1']);
    const spans = trace.traceEvents.filter((e) => e.ph === 'X');
    const steps = spans.filter((s) => s.cat === 'step');
    expect(steps).toHaveLength(2 * 60);
    const ratios: number[] = [];
    let phaseTotal = 0;
    let stepTotal = 0;
    for (const st of steps) {
      const phases = spans.filter((s) => s.cat === 'phase' && s.tid === st.tid && s.args?.step === st.args?.step);
      expect(phases.map((p) => p.name)).toContain('forward + backward');
      for (const p of phases) {
        expect(p.ts).toBeGreaterThanOrEqual(st.ts);
        expect(p.ts + p.dur).toBeLessThanOrEqual(st.ts + st.dur + 1);
      }
      const sum = phases.reduce((a, p) => a + p.dur, 0);
      ratios.push(sum / st.dur);
      phaseTotal += sum;
      stepTotal += st.dur;
    }
    ratios.sort((a, b) => a - b);
    // The typical step's phases fill its time to within 5%; over the run, within 10% (on a loaded
    // machine a few steps preempted between two phases once brought the total to 0.86).
    expect(phaseTotal / stepTotal).toBeGreaterThan(0.9);
    expect(ratios[Math.floor(ratios.length / 2)]).toBeGreaterThan(0.95);
    // One evaluation per epoch on the coordinator's track (the second is the final one).
    expect(spans.filter((s) => s.tid === 0 && s.name === 'evaluation')).toHaveLength(2);
  }, 200_000);
});
