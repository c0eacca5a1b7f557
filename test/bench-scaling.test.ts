/**
 * `ddp bench scaling` end to end, on short runs: strong scaling with one process and one worker, and
 * weak scaling (--weak) with one process against two workers. Speed itself is not asserted.
 */
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

  it('--weak runs one process with batch B and 2 workers with 2 x B, and writes the per-round and median ratios', async () => {
    const out = path.join(tmp, 'weak.json');
    const args = ['bench', 'scaling', '--weak', '--batch-size', '16', '--max-steps', '3', '--limit-train', '256', '--rounds', '1', '--out', out];
    const run = await runCli(args, { timeoutMs: 120_000 });
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(result).toMatchObject({ benchmark: 'scaling-weak', perWorkerBatch: 16, maxSteps: 3, rounds: 1 });
    expect(typeof result.date).toBe('string');
    expect(result.machine).toMatchObject({ nproc: expect.any(Number), nodeVersion: process.version, cpuModel: expect.any(String) });
    expect(result.machine.loadAverage).toHaveLength(3);

    expect(result.runs.map((r: { workers: number; batchSize: number }) => [r.workers, r.batchSize])).toEqual([[0, 16], [2, 32]]);
    for (const r of result.runs) {
      expect(r.round).toBe(1);
      expect(r.samplesPerSec).toBeGreaterThan(0);
      expect(r.command).toEqual(expect.arrayContaining(['train', '--max-steps', '3', '--no-eval', '--limit-test', '200', '--seed', '42', '--log-format', 'json', '--limit-train', '256']));
    }
    const [single, two] = result.summary;
    expect(single).toMatchObject({ workers: 0, batchSize: 16, ratios: [], medianRatio: null });
    expect(two).toMatchObject({ workers: 2, batchSize: 32 });
    expect(two.ratios).toHaveLength(1);
    for (const ratio of [...two.ratios, two.medianRatio]) {
      expect(Number.isFinite(ratio) && ratio > 0, `ratio ${ratio}`).toBe(true);
    }
    expect(two.ratios[0]).toBeCloseTo(result.runs[1].samplesPerSec / (2 * result.runs[0].samplesPerSec), 12);
    expect(run.stdout).toMatch(/^\s+2\s+default\s+32\s+[\d.]+\s+[\d.]+%\s+[\d.]+%$/m);
  });

  it('rejects the flags of the other mode', async () => {
    const strongOnly = await runCli(['bench', 'scaling', '--weak', '--steps', '5']);
    expect(strongOnly.code).toBe(2);
    expect(strongOnly.stderr).toContain('--steps does not apply to --weak');
    const weakOnly = await runCli(['bench', 'scaling', '--rounds', '2']);
    expect(weakOnly.code).toBe(2);
    expect(weakOnly.stderr).toContain('--rounds applies only with --weak');
  });
});
