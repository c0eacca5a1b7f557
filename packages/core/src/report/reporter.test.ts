import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { DdpEvent } from './events.js';
import { Reporter, describeEvent } from './reporter.js';

const step: DdpEvent = { event: 'step', step: 1, epoch: 1, loss: 0.5, samples: 64, bytesSent: 10 };
const done: DdpEvent = { event: 'done', steps: 1, workers: 2, backend: 'cpu', testLoss: 1, testAccuracy: 0.5, samplesPerSec: 1, wallSeconds: 1, trainSeconds: 1 };

describe('Reporter.subscribe', () => {
  it.each(['text', 'json'] as const)('gives subscribers every event in %s mode, after writing it, until they unsubscribe', (format) => {
    const out = new PassThrough();
    let written = '';
    out.on('data', (d) => (written += String(d)));
    const r = new Reporter(format, out, process.stderr);
    const seen: DdpEvent[] = [];
    const off = r.subscribe((e) => seen.push(e));
    r.event(step);
    r.event(done);
    off();
    r.event(step);
    expect(seen).toEqual([step, done]);
    if (format === 'json') expect(written.trim().split('\n').map((l) => JSON.parse(l))).toEqual([step, done, step]);
    else expect(written).toMatch(/^done: 1 steps/m);
  });
});

describe('describeEvent', () => {
  it('writes a straggler (star: with its backup; ring: none) and a stall as one line each', () => {
    expect(describeEvent({ event: 'straggler', step: 42, rank: 1, host: 'node-a:1234', waitedMs: 812.4, medianMs: 61, backupRank: 0 })).toBe(
      'step 42: straggler rank 1 (node-a:1234): its shard out 812 ms (median 61 ms); also given to rank 0',
    );
    expect(describeEvent({ event: 'straggler', step: 7, rank: 2, waitedMs: 12500, medianMs: 80, backupRank: -1 })).toBe(
      'step 7: straggler rank 2: the ring waited for it, the step took 12.5 s (median 80 ms)',
    );
    expect(
      describeEvent({
        event: 'stall', step: 42, waitedMs: 10040,
        waitingFor: [{ rank: 1, host: 'node-a:1234', last: 'gradient for step 41', agoMs: 10300 }, { rank: 3, host: 'node-b:99', last: 'joined', agoMs: 60000 }],
      }),
    ).toBe('step 42: waiting 10 s for rank 1 (node-a:1234, last: gradient for step 41, 10.3 s ago), rank 3 (node-b:99, last: joined, 60.0 s ago)');
  });
});
