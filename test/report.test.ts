/**
 * `ddp report` end to end: a real `ddp train --log-format json` run (2 epochs of 10 steps), its NDJSON
 * plotted by the built CLI as SVG and PNG; and the files it refuses.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-report-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Items of each mark kind in vega's SVG: symbol (points), rect (bars), rule, line. */
function markCounts(svg: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of svg.matchAll(/<g class="mark-(\w+) role-mark[^"]*"[^>]*>(.*?)<\/g>/gs)) {
    counts[m[1]!] = (counts[m[1]!] ?? 0) + (m[2]!.match(/<(path|line)\b/g)?.length ?? 0);
  }
  return counts;
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('ddp report', () => {
  const ndjson = path.join(tmp, 'run.ndjson');
  const out = path.join(tmp, 'plots');
  let report: Awaited<ReturnType<typeof runCli>>;

  beforeAll(async () => {
    // 640 samples in batches of 64: 10 steps an epoch, 2 epoch events.
    const train = await runCli(['train', '--workers', '0', '--max-steps', '20', '--limit-train', '640', '--limit-test', '100', '--epochs', '2', '--log-format', 'json'], { json: true, timeoutMs: 240_000 });
    expect(train.code, train.stderr).toBe(0);
    expect(train.events.filter((e) => e.event === 'step')).toHaveLength(20);
    expect(train.events.filter((e) => e.event === 'epoch')).toHaveLength(2);
    fs.writeFileSync(ndjson, train.stdout);
    report = await runCli(['report', ndjson, '--out', out]);
  }, 300_000);

  it('writes an SVG and a PNG for each chart', () => {
    expect(report.code, report.stderr).toBe(0);
    // CI must draw the PNGs' text: the renderer found its font.
    expect(report.stderr).not.toContain('no DejaVu Sans found');
    expect(fs.readdirSync(out).sort()).toEqual(['accuracy', 'breakdown', 'loss', 'throughput'].flatMap((n) => [`${n}.png`, `${n}.svg`]));
    for (const name of ['loss', 'accuracy', 'throughput', 'breakdown']) expect(report.stdout).toContain(path.join(out, `${name}.svg`));
  });

  it('draws one mark per event: 20 loss points, 2 accuracy points, 2 epoch bars and the done rule, the phases stacked', () => {
    const svg = (name: string) => fs.readFileSync(path.join(out, `${name}.svg`), 'utf8');
    for (const name of ['loss', 'accuracy', 'throughput', 'breakdown']) expect(svg(name)).toContain('<svg');
    expect(markCounts(svg('loss'))).toMatchObject({ line: 1, symbol: 20 });
    expect(markCounts(svg('accuracy'))).toMatchObject({ line: 1, symbol: 2 });
    expect(markCounts(svg('throughput'))).toMatchObject({ rect: 2, rule: 1 });
    // --workers 0 times compute and optimizer.
    expect(markCounts(svg('breakdown')).rect).toBeGreaterThanOrEqual(2);
    expect(svg('loss')).toContain('>step</text>');
    expect(svg('accuracy')).toContain('>test accuracy</text>');
  });

  it('writes real PNGs of a sane size', () => {
    for (const name of ['loss', 'accuracy', 'throughput', 'breakdown']) {
      const png = fs.readFileSync(path.join(out, `${name}.png`));
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE), name).toBe(true);
      const { width, height } = pngSize(png);
      expect(width, name).toBeGreaterThanOrEqual(600);
      expect(width, name).toBeLessThanOrEqual(4000);
      expect(height, name).toBeGreaterThanOrEqual(150);
      expect(height, name).toBeLessThanOrEqual(3000);
    }
  });
});

describe('ddp report: files it refuses, with one line naming the file, exit 2', () => {
  const refuse = async (args: string[], message: RegExp) => {
    const run = await runCli(['report', ...args, '--out', path.join(tmp, 'refused')]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(message);
    expect(fs.existsSync(path.join(tmp, 'refused'))).toBe(false);
  };

  it('a missing file', async () => {
    await refuse([path.join(tmp, 'nope.ndjson')], /^ddp: cannot read .*nope\.ndjson: no such file/);
  });

  it('an empty file', async () => {
    const file = path.join(tmp, 'empty.ndjson');
    fs.writeFileSync(file, '');
    await refuse([file], /^ddp: .*empty\.ndjson is empty/);
  });

  it('a line that is not JSON, with its number', async () => {
    const file = path.join(tmp, 'text.ndjson');
    fs.writeFileSync(file, '{"event":"start","workers":0}\nepoch 1/2 loss 2.3\n');
    await refuse([file], /^ddp: .*text\.ndjson:2: not JSON/);
  });

  it('a file without step events', async () => {
    const file = path.join(tmp, 'nosteps.ndjson');
    fs.writeFileSync(file, '{"event":"start","workers":0}\n{"event":"evaluate","testAccuracy":0.9}\n');
    await refuse([file], /^ddp: .*nosteps\.ndjson has no step events/);
  });

  it('no file at all', async () => {
    await refuse([], /^ddp: ddp report needs the NDJSON file/);
  });
});
