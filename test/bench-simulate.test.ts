/** `ddp bench simulate` end to end: the table for known inputs, the compute time from a step result, and --check. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-bench-simulate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('ddp bench simulate', () => {
  it('prints star and ring per worker count for the seed CNN and --params, with the alpha-beta figures', async () => {
    const run = await runCli(['bench', 'simulate', '--workers', '2..8', '--bandwidth', '10Gbit', '--latency', '50us', '--compute-ms', '60', '--batch-size', '64', '--params', '10000000']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe('alpha-beta model: latency 50 us, bandwidth 10 Gbit/s per NIC and direction; float32 gradients (4 bytes/param)');
    expect(lines[1]).toBe('compute 60 ms per step of 64 samples (--compute-ms); weak scaling (per-worker batch fixed)');
    // Seed CNN, N = 2: star 2*50us + 2*2*373288 B / 1.25e9 B/s = 1.2945 ms; ring 2*50us + 373288/1.25e9 = 0.3986 ms.
    const seed = lines.indexOf('93,322 parameters (0.373 MB per gradient)');
    expect(lines[seed + 2]).toMatch(/^\s+2\s+60\.00 \|\s+1\.29\s+61\.29\s+97\.9% \|\s+0\.40\s+60\.40\s+99\.3% \|\s+2088\s+2119$/);
    // 10M floats, N = 8: star 2*50us + 16*40e6/1.25e9 = 512.1 ms; ring 14*50us + (14/8)*32 ms = 56.7 ms.
    const big = lines.indexOf('10,000,000 parameters (40.000 MB per gradient)');
    expect(lines.slice(big + 2, big + 5).map((l) => l.trim().split(/\s+/)[0])).toEqual(['2', '4', '8']);
    expect(lines[big + 4]).toMatch(/^\s+8\s+60\.00 \|\s+512\.10\s+572\.10\s+10\.5% \|\s+56\.70\s+116\.70\s+51\.4%/);
  });

  it('takes the compute time from a step result, and fits alpha and beta to an allreduce result', async () => {
    const step = path.join(tmp, 'step-20260101-000000.json');
    fs.writeFileSync(step, JSON.stringify({ benchmark: 'step', batchSize: 32, sets: [{ set: 'naive', medianStepMs: 500 }, { set: 'ddp', medianStepMs: 40 }] }));
    // Rows that follow the model exactly (member-root star) for alpha = 100 us, beta = 0.5 GB/s.
    const [alpha, beta] = [100e-6, 0.5e9];
    const rows = [];
    for (const workers of [2, 4]) {
      for (const algo of ['star', 'ring']) {
        for (const floats of [1000, 1e6]) {
          const w = floats * 4;
          const t = algo === 'star' ? 2 * alpha + (2 * (workers - 1) * w) / beta : 2 * (workers - 1) * alpha + ((2 * (workers - 1)) / workers) * (w / beta);
          rows.push({ workers, algo, compress: 'none', floats, bytes: w, wireBytes: w, medianMs: t * 1000 });
        }
      }
    }
    const measured = path.join(tmp, 'allreduce.json');
    fs.writeFileSync(measured, JSON.stringify({ benchmark: 'allreduce', rows }));
    const run = await runCli(['bench', 'simulate', '--workers', '2,4', '--from-step', step, '--check', measured, '--scaling', 'strong']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`compute 40 ms per step of 32 samples (ddp kernels, ${step}); strong scaling`);
    expect(run.stdout).toContain('fitted on N = 2: alpha = 100 us, beta = 4 Gbit/s (0.500 GB/s);');
    expect(run.stdout).toMatch(/^\s+4\s+ring\s+none\s+1000000\s+12\.600\s+12\.600\s+1\.00\s*$/m);
    expect(run.stdout).toContain('|model/measured - 1| over rows outside the fit: median 0%, worst 0%');
    // With the network given instead of fitted: half the bandwidth doubles the bandwidth term.
    const fixed = await runCli(['bench', 'simulate', '--workers', '2', '--compute-ms', '1', '--check', measured, '--no-fit', '--latency', '100us', '--bandwidth', '2Gbit']);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toContain('as given (--no-fit): alpha = 100 us, beta = 2 Gbit/s (0.250 GB/s)');
    // ring N=4, 1M floats: 6 x 100 us + 1.5 x 4 MB / 0.25 GB/s = 24.6 ms against 12.6 measured.
    expect(fixed.stdout).toMatch(/^\s+4\s+ring\s+none\s+1000000\s+12\.600\s+24\.600\s+1\.95\s*$/m);
  });

  it('says what is wrong with a unit or a missing compute time', async () => {
    const unit = await runCli(['bench', 'simulate', '--bandwidth', '10 furlongs', '--compute-ms', '1']);
    expect(unit.code).toBe(2);
    expect(unit.stderr).toMatch(/--bandwidth: unknown unit 'furlongs' in '10 furlongs'/);
    const step = path.join(tmp, 'not-a-step.json');
    fs.writeFileSync(step, '{"sets": []}');
    const bad = await runCli(['bench', 'simulate', '--from-step', step]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${step}: expected a 'ddp bench step' result with a non-empty 'sets' array`);
  });
});
