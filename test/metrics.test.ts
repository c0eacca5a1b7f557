/**
 * GET /metrics on a real run: a coordinator and two workers (ring mode, the default), the token set.
 * The coordinator exits right after `done`, so the endpoints are read while it trains (at step 20 or
 * later) and checked against the step events seen so far; `promtool check metrics` lints the text
 * when it is installed (.ci/run installs it).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startCoordinator, startWorker } from './distributed-helpers.js';

const TOKEN = 'metrics-e2e-token';
const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasPromtool) console.log('promtool not installed (apt-get install -y prometheus): the metrics lint is skipped');

/** Samples by series (name{labels}) from a Prometheus text exposition. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d) => (output += String(d)));
    p.stderr.on('data', (d) => (output += String(d)));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, output }));
    p.stdin.end(text);
  });
}

describe('coordinator HTTP endpoints on a real run', () => {
  let metricsText = '';

  it('serves /healthz, /readyz and /metrics beside the WebSocket, with counters that match the step events', async () => {
    const env = { DDP_TOKEN: TOKEN };
    const { coord, url, port } = await startCoordinator(['--workers', '2', '--max-steps', '30', '--limit-train', '2000', '--limit-test', '200', '--backend', 'wasm'], env);
    expect(coord.stderr()).toContain(`metrics on http://127.0.0.1:${port}/metrics`);
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`, { headers: auth });
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toMatch(/^not ready: waiting for workers \(0\/2 joined\)\n$/);

    startWorker(url, ['--backend', 'wasm'], env);
    startWorker(url, ['--backend', 'wasm'], env);
    const seen = await coord.waitForEvent((e) => e.event === 'step' && (e.step as number) >= 20, 180_000);
    const res = await fetch(`${base}/metrics?token=${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    metricsText = await res.text();
    if (process.env.DDP_METRICS_DUMP) fs.writeFileSync(process.env.DDP_METRICS_DUMP, metricsText); // to look at by hand
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/readyz`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${base}/nothing-here`, { headers: auth })).status).toBe(404);

    const m = parse(metricsText);
    const steps = m.get('ddp_steps_total')!;
    expect(steps).toBeGreaterThanOrEqual(seen.step as number);
    expect(m.get('ddp_samples_total')).toBe(64 * steps);
    expect(m.get('ddp_step_duration_seconds_count')).toBe(steps);
    expect(m.get('ddp_allreduce_duration_seconds_count')).toBe(steps);
    expect(m.get('ddp_worker_compute_seconds_count{rank="0"}')).toBe(steps);
    expect(m.get('ddp_worker_compute_seconds_count{rank="1"}')).toBe(steps);
    expect(m.get('ddp_workers')).toBe(2);
    expect(m.get('ddp_bytes_sent_total')).toBeGreaterThan(0);
    expect(m.get('ddp_train_loss')).toBeGreaterThan(0);
    expect([...m.keys()].find((k) => k.startsWith('ddp_build_info{'))).toMatch(/backend="wasm"/);

    // The step events carry what the metrics count: per-rank timing and the bytes sent.
    const stepEvents = coord.events().filter((e) => e.event === 'step');
    expect(stepEvents[0]).toMatchObject({ ranks: [{ rank: 0 }, { rank: 1 }], bytesSent: expect.any(Number) });

    await coord.waitForEvent((e) => e.event === 'done', 180_000);
    expect((await coord.exit).code).toBe(0);
  }, 300_000);

  it.skipIf(!hasPromtool)('promtool check metrics accepts the exposition: no errors, no lint warnings', async () => {
    expect(metricsText).not.toBe('');
    const { code, output } = await promtool(metricsText);
    expect(output).toBe('');
    expect(code).toBe(0);
  });
});
