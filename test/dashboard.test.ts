/**
 * The live dashboard on a real run: a coordinator with a token and two workers (ring mode), the page
 * opened in Debian's headless chromium (driven by playwright-core) while it trains. Checks that the
 * page draws the steps the NDJSON output reports, lists both workers, and writes a screenshot to
 * test/artifacts/dashboard.png. Skips when /usr/bin/chromium is missing (.ci/run installs it).
 */
import { hostname } from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { startCoordinator, startWorker } from './distributed-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) console.log(`${CHROMIUM} not installed (apt-get install -y chromium): the dashboard test is skipped`);
const TOKEN = 'dashboard-e2e-token';
const ARTIFACTS = path.join(import.meta.dirname, 'artifacts');

let browser: Browser | null = null;
afterEach(async () => {
  await browser?.close();
  browser = null;
});

describe('the live dashboard', () => {
  it.skipIf(!hasChromium)('shows the loss, the workers and the events of a running job', async () => {
    const env = { DDP_TOKEN: TOKEN };
    const { coord, url, port } = await startCoordinator(
      ['--workers', '2', '--max-steps', '200', '--limit-train', '4000', '--limit-test', '200', '--backend', 'wasm'],
      env,
    );
    expect(coord.stderr()).toContain(`dashboard on http://127.0.0.1:${port}/`);
    expect(coord.stderr()).not.toContain(TOKEN);
    startWorker(url, ['--backend', 'wasm'], env);
    startWorker(url, ['--backend', 'wasm'], env);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'], // playwright gives it a fresh profile
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // Opened before the workers are done joining: it sees the history, then the live events.
    await page.goto(`http://127.0.0.1:${port}/?token=${TOKEN}`);
    // After the first epoch's evaluation, so that the accuracy chart has a point too.
    await coord.waitForEvent((e) => e.event === 'epoch', 240_000);
    await coord.waitForEvent((e) => e.event === 'step' && (e.step as number) >= 100, 240_000);
    await page.waitForFunction(() => (window as any).ddpDashboard?.drawn >= 100, undefined, { timeout: 30_000 });

    const seen = coord.events().filter((e) => e.event === 'step');
    const shown = await page.evaluate(() => {
      const d = (window as any).ddpDashboard;
      return { steps: d.steps.length as number, drawn: d.drawn as number, lastLoss: d.lastLoss as number, lastStep: d.steps[d.steps.length - 1] as number };
    });
    expect(shown.steps).toBeGreaterThanOrEqual(seen.length - 3);
    expect(shown.drawn).toBeGreaterThanOrEqual(seen.length - 3);
    const stepEvents = coord.events().filter((e) => e.event === 'step');
    const sameStep = stepEvents.find((e) => e.step === shown.lastStep);
    expect(sameStep?.loss).toBe(shown.lastLoss); // the number shown is one the NDJSON reported, bit for bit

    // The loss chart's canvas has drawn something (not one uniform colour).
    const inked = await page.evaluate(() => {
      const canvas = document.querySelector('#loss-chart canvas') as HTMLCanvasElement;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      const colours = new Set<number>();
      for (let i = 0; i < data.length; i += 4 * 7) colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]! | (data[i + 3]! << 24));
      return colours.size;
    });
    expect(inked).toBeGreaterThan(3);

    const ranks = await page.$$eval('#workers tbody tr', (rows) => rows.map((r) => r.querySelector('td')!.textContent));
    // The host column: host:pid as each worker reported it in its hello.
    const hosts = await page.$$eval('#workers tbody tr', (rows) => rows.map((r) => r.querySelectorAll('td')[1]!.textContent ?? ''));
    expect(hosts.length).toBe(2);
    for (const h of hosts) expect(h.startsWith(`${hostname()}:`), h).toBe(true);
    expect(ranks).toEqual(['0', '1']);
    expect(await page.textContent('#config')).toContain('batchSize');
    expect(await page.textContent('#log')).toContain('worker_joined');
    const stepText = await page.textContent('#step');
    expect(stepText).toMatch(/^\d+ \/ 200$/);

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(pageErrors).toEqual([]);

    // Without the token: 401, for the page and the stream alike.
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${port}/events`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });
});
