// The Metrics class fed a synthetic event list, read back through its registry.
import type { DdpEvent } from '@ddp/core';
import { describe, expect, it } from 'vitest';
import { Metrics } from './metrics.js';

async function value(m: Metrics, name: string, labels: Record<string, string> = {}, suffix = ''): Promise<number | undefined> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const got = await metric.get();
  const hit = got.values.find((v) => (v as { metricName?: string }).metricName === (suffix ? name + suffix : (v as { metricName?: string }).metricName) && Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l));
  return hit?.value;
}

const ranks = (c0: number, c1: number) => [
  { rank: 0, computeMs: c0, allreduceMs: 10, waitingMs: 2 },
  { rank: 1, computeMs: c1, allreduceMs: 30, waitingMs: 0 },
];

describe('Metrics', () => {
  it('counts steps, samples, bytes and failures and keeps the gauges from the events', async () => {
    let now = 100;
    const m = new Metrics({ version: '9.9.9', workers: 2, defaultMetrics: false, clock: () => now });
    expect(m.readiness()).toBe('not ready: waiting for workers (0/2 joined)');
    expect(await value(m, 'ddp_test_accuracy')).toBeNaN(); // no evaluation yet
    const events: DdpEvent[] = [
      { event: 'worker_joined', rank: 0, workers: 1 },
      { event: 'worker_joined', rank: 1, workers: 2 },
      { event: 'start', backend: 'wasm', workers: 2, dataset: 'mnist', epochs: 1, batchSize: 64, seed: 1, trainSamples: 2000, testSamples: 200, allreduce: 'ring' },
      { event: 'ring_formed', generation: 0, size: 2, ranks: [0, 1], step: 0 },
    ];
    events.forEach((e) => m.observe(e));
    expect(m.readiness()).toBeNull();
    for (let s = 1; s <= 3; s++) {
      now += 0.5;
      m.observe({ event: 'step', step: s, epoch: 1, loss: 2 / s, samples: 64, ranks: ranks(100, 300), bytesSent: 1000 });
    }
    m.observe({ event: 'stall', step: 3, waitedMs: 10000, waitingFor: [{ rank: 1, host: 'h:1', last: 'gradient for step 2', agoMs: 10000 }] });
    m.observe({ event: 'straggler', step: 3, rank: 1, waitedMs: 900, medianMs: 50, backupRank: -1 });
    m.observe({ event: 'worker_lost', rank: 1, step: 3, code: 'DDP_TIMEOUT', reason: 'silent', workers: 1 });
    m.observe({ event: 'epoch', epoch: 1, trainLoss: 1, testLoss: 0.5, testAccuracy: 0.875, seconds: 3 });
    m.observe({ event: 'done', steps: 3, workers: 1, backend: 'wasm', testLoss: 0.5, testAccuracy: 0.9, samplesPerSec: 100, wallSeconds: 4, trainSeconds: 2 });

    expect(await value(m, 'ddp_steps_total')).toBe(3);
    expect(await value(m, 'ddp_samples_total')).toBe(192);
    expect(await value(m, 'ddp_bytes_sent_total')).toBe(3000);
    expect(await value(m, 'ddp_worker_failures_total', { code: 'DDP_TIMEOUT' })).toBe(1);
    expect(await value(m, 'ddp_stragglers_total')).toBe(1);
    expect(await value(m, 'ddp_workers')).toBe(1);
    expect(await value(m, 'ddp_train_loss')).toBeCloseTo(2 / 3);
    expect(await value(m, 'ddp_test_accuracy')).toBe(0.9);
    expect(await value(m, 'ddp_build_info', { version: '9.9.9', backend: 'wasm', node: process.version })).toBe(1);
    expect(await value(m, 'ddp_step_duration_seconds', {}, '_count')).toBe(3);
    expect(await value(m, 'ddp_step_duration_seconds', {}, '_sum')).toBeCloseTo(1.5);
    expect(await value(m, 'ddp_allreduce_duration_seconds', {}, '_sum')).toBeCloseTo(3 * 0.02);
    expect(await value(m, 'ddp_worker_compute_seconds', { rank: '0' }, '_sum')).toBeCloseTo(0.3);
    expect(await value(m, 'ddp_worker_compute_seconds', { rank: '1' }, '_sum')).toBeCloseTo(0.9);
    expect(await value(m, 'ddp_worker_compute_seconds', { rank: '1' }, '_count')).toBe(3);
    expect(m.readiness()).toBe('not ready: the job is over');

    const text = await m.text();
    expect(text).toMatch(/^# HELP ddp_steps_total .+$/m);
    expect(text).toMatch(/^ddp_samples_total 192$/m);
    expect(text).toMatch(/^ddp_worker_compute_seconds_count\{rank="0"\} 3$/m);
  });

  it('times a step from the previous commit, not across an evaluation or a ring formation', async () => {
    let now = 0;
    const m = new Metrics({ version: 'x', defaultMetrics: false, clock: () => now });
    const step = (s: number): DdpEvent => ({ event: 'step', step: s, epoch: 1, loss: 1, samples: 8 });
    m.observe({ event: 'start', backend: 'cpu', workers: 1, dataset: 'mnist', epochs: 2, batchSize: 8, seed: 1, trainSamples: 16, testSamples: 8 });
    now = 1;
    m.observe(step(1));
    now = 100; // evaluating
    m.observe({ event: 'epoch', epoch: 1, trainLoss: 1, testLoss: 1, testAccuracy: 0.5, seconds: 100 });
    now = 102;
    m.observe(step(2));
    now = 200;
    m.observe({ event: 'ring_formed', generation: 1, size: 1, ranks: [0], step: 2 });
    now = 204;
    m.observe(step(3));
    expect(await value(m, 'ddp_step_duration_seconds', {}, '_sum')).toBe(1 + 2 + 4);
    expect(await value(m, 'ddp_steps_total')).toBe(3);
    expect(await value(m, 'ddp_test_accuracy')).toBe(0.5);
    expect(await value(m, 'ddp_bytes_sent_total')).toBe(0); // no figure, no count
  });

  it('includes Node\'s default process metrics unless told not to', async () => {
    expect(await new Metrics({ version: 'x' }).text()).toMatch(/^process_cpu_seconds_total /m);
    expect(await new Metrics({ version: 'x', defaultMetrics: false }).text()).not.toMatch(/process_cpu/);
  });
});
