/** `ddp bench scaling` end to end, on a short run: one process and one worker. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-bench-scaling-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('ddp bench scaling', () => {
  it('runs ddp train for the single process and 1 worker, and reports throughput, efficiency and the breakdown', async () => {
    const out = path.join(tmp, 'scaling.json');
    const run = await runCli(['bench', 'scaling', '--workers', '1', '--steps', '4', '--warmup-steps', '2', '--batch-size', '32', '--out', out], { timeoutMs: 120_000 });
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(result.runs.map((r: { workers: number }) => r.workers)).toEqual([0, 1]);
    const [single, one] = result.runs;
    for (const r of result.runs) {
      expect(r.windowSteps).toBe(4);
      expect(r.samplesPerSec).toBeCloseTo((4 * 32) / r.windowSeconds, 6);
      expect(r.command).toEqual(expect.arrayContaining(['train', '--max-steps', '6', '--log-format', 'json']));
      expect(typeof r.breakdown?.compute).toBe('number');
    }
    expect(single.efficiency).toBeUndefined();
    expect(one.efficiency).toBe(1); // against itself
    expect(one.efficiencyVsSingleProcess).toBeCloseTo(one.samplesPerSec / single.samplesPerSec, 12);
    expect(run.stdout).toMatch(/^\s+1\s+default\s+[\d.]+\s+100\.0%\s+[\d.]+%/m);
  });
});
