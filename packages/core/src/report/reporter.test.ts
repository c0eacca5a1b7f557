import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { DdpEvent } from './events.js';
import { Reporter } from './reporter.js';

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
