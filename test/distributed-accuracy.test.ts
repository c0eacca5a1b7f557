/**
 * After one epoch on the full MNIST training set (938 steps of batch 64), the test accuracy with 2
 * workers is within 0.3 points of the single-process run. Two full epochs take about 3.5-4 minutes on
 * the 2-core build machine, so this runs only with DDP_E2E_FULL=1:
 *   cd test && DDP_E2E_FULL=1 npx vitest run distributed-accuracy
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';

describe.skipIf(!process.env.DDP_E2E_FULL)('one epoch on MNIST, 2 workers vs one process', () => {
  it('test accuracies within 0.3 points', async () => {
    const args = ['--epochs', '1', '--batch-size', '64', '--seed', '42', '--backend', 'wasm', '--log-format', 'json'];
    const single = await runCli(['train', '--workers', '0', ...args], { json: true, timeoutMs: 900_000 });
    expect(single.code, single.stderr).toBe(0);
    const dist = await runCli(['train', '--workers', '2', ...args], { json: true, timeoutMs: 900_000 });
    expect(dist.code, dist.stderr).toBe(0);
    const a = single.events.at(-1)!;
    const b = dist.events.at(-1)!;
    expect(a).toMatchObject({ event: 'done', steps: 938, workers: 0 });
    expect(b).toMatchObject({ event: 'done', steps: 938, workers: 2 });
    expect(a.testAccuracy as number).toBeGreaterThan(0.97);
    expect(Math.abs((a.testAccuracy as number) - (b.testAccuracy as number))).toBeLessThanOrEqual(0.003);
  }, 1_800_000);
});
