import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-e2e-'));

describe('ddp train --workers 0 (one process)', () => {
  it('trains, reports NDJSON events, saves a model that ddp evaluate scores the same', async () => {
    const out = tmp();
    const args = ['train', '--workers', '0', '--limit-train', '1280', '--limit-test', '500', '--epochs', '2',
      '--batch-size', '64', '--log-format', 'json', '--out', out];
    const run = await runCli(args, { json: true });
    expect(run.code, run.stderr).toBe(0);
    const kinds = run.events.map((e) => e.event);
    expect(kinds[0]).toBe('start');
    expect(run.events[0]).toMatchObject({ workers: 0, dataset: 'mnist', epochs: 2, batchSize: 64, seed: 42, backend: 'wasm' });
    const steps = run.events.filter((e) => e.event === 'step');
    expect(steps.length).toBe(40); // 2 epochs x 1280 / 64
    const epochs = run.events.filter((e) => e.event === 'epoch');
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2]);
    const done = run.events.at(-1)!;
    expect(done).toMatchObject({ event: 'done', steps: 40, workers: 0, backend: 'wasm' });
    // The loss falls: the mean of the last 5 steps is well below the first step's (about ln 10 = 2.30).
    const first = steps[0].loss as number;
    const last5 = steps.slice(-5).reduce((a, e) => a + (e.loss as number), 0) / 5;
    expect(first).toBeGreaterThan(2);
    expect(last5).toBeLessThan(first * 0.6);
    expect(done.testAccuracy as number).toBeGreaterThan(0.7);
    expect(done.samplesPerSec as number).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(out, 'model.json'))).toBe(true);

    const ev = await runCli(['evaluate', '--model', out, '--limit-test', '500', '--log-format', 'json'], { json: true });
    expect(ev.code, ev.stderr).toBe(0);
    const e = ev.events.find((x) => x.event === 'evaluate')!;
    expect(e.samples).toBe(500);
    expect(Math.abs((e.testAccuracy as number) - (done.testAccuracy as number))).toBeLessThan(1e-9);
    expect(Math.abs((e.testLoss as number) - (done.testLoss as number))).toBeLessThan(1e-5);
  });

  it('stops after --max-steps, then evaluates and saves', async () => {
    const out = tmp();
    const run = await runCli(['train', '--workers', '0', '--max-steps', '3', '--limit-test', '100', '--log-format', 'json', '--out', out], { json: true });
    expect(run.code, run.stderr).toBe(0);
    expect(run.events.filter((e) => e.event === 'step').length).toBe(3);
    expect(run.events.at(-1)).toMatchObject({ event: 'done', steps: 3 });
    expect(run.events.some((e) => e.event === 'checkpoint' && e.step === 3)).toBe(true);
  });
});

describe('ddp CLI errors and help', () => {
  it('prints help that lists the commands and the flags', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['train', 'coordinator start', 'worker', 'evaluate', 'bench']) expect(top.stdout).toContain(c);
    const train = await runCli(['train', '--help']);
    expect(train.code).toBe(0);
    for (const f of ['--workers', '--epochs', '--batch-size', '--lr', '--seed', '--max-steps', '--dataset', '--data-dir',
      '--limit-train', '--limit-test', '--out', '--backend', '--log-format']) expect(train.stdout).toContain(f);
  });

  it('refuses a wrong flag or value with one line and exit code 2', async () => {
    for (const args of [['train', '--epoch', '1'], ['train', '--epochs', 'two'], ['train', '--backend', 'gpu'], ['frobnicate']]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^ddp: /);
    }
  });

  it('names the missing data folder or model with exit code 2', async () => {
    const missing = path.join(tmp(), 'nope');
    const r = await runCli(['train', '--workers', '0', '--data-dir', missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(missing);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const m = await runCli(['evaluate', '--model', missing]);
    expect(m.code).toBe(2);
    expect(m.stderr).toContain('model.json');
  });
});
