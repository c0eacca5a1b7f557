import { describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { parseRunEvents } from './read-run.js';
import { epochThroughput, runCharts, scalingSpec, weakScalingSpec, type Chart } from './specs.js';
import { specToSvg } from './render.js';
import type { ScalingRun } from '../bench/scaling-bench.js';

/** A small run: 2 epochs of 3 steps of 32 samples, on 2 ring workers. */
function syntheticRun(): string {
  const events: object[] = [{ event: 'start', backend: 'wasm', workers: 2, dataset: 'mnist', epochs: 2, batchSize: 32, seed: 42, allreduce: 'ring' }];
  events.push({ event: 'worker_joined', rank: 0, workers: 1 });
  for (let step = 1; step <= 6; step++) {
    events.push({ event: 'step', step, epoch: step <= 3 ? 1 : 2, loss: 2.5 - step * 0.2, samples: 32 });
    if (step === 3) events.push({ event: 'epoch', epoch: 1, trainLoss: 2.1, testLoss: 2.0, testAccuracy: 0.5, seconds: 2 });
  }
  events.push({ event: 'epoch', epoch: 2, trainLoss: 1.5, testLoss: 1.4, testAccuracy: 0.75, seconds: 0.5 });
  events.push({
    event: 'done', steps: 6, workers: 2, backend: 'wasm', testLoss: 1.4, testAccuracy: 0.75, samplesPerSec: 150, wallSeconds: 3, trainSeconds: 1.28,
    breakdown: { compute: 30, allreduce: 4, waiting: 2, optimizer: 1, other: 0.5 },
  });
  return events.map((e) => JSON.stringify(e)).join('\n') + '\n';
}

/** The data values of a chart's layers (or of the chart, when it has one data set), in layer order. */
function layerData(chart: Chart): Array<Array<Record<string, unknown>>> {
  const spec = chart.spec as { data?: { values: Array<Record<string, unknown>> }; layer?: Array<{ data: { values: Array<Record<string, unknown>> } }> };
  return spec.layer ? spec.layer.map((l) => l.data.values) : [spec.data!.values];
}

/** Items of each mark kind in vega's SVG: symbol (points), rect (bars), rule, line. */
function markCounts(svg: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of svg.matchAll(/<g class="mark-(\w+) role-mark[^"]*"[^>]*>(.*?)<\/g>/gs)) {
    counts[m[1]!] = (counts[m[1]!] ?? 0) + (m[2]!.match(/<(path|line)\b/g)?.length ?? 0);
  }
  return counts;
}

describe('ddp report: specs from a run\'s events', () => {
  const events = parseRunEvents(syntheticRun(), 'run.ndjson');
  const { charts, missing } = runCharts(events);
  const byName = Object.fromEntries(charts.map((c) => [c.name, c]));

  it('makes the loss, accuracy, throughput and breakdown charts', () => {
    expect(charts.map((c) => c.name)).toEqual(['loss', 'accuracy', 'throughput', 'breakdown']);
    expect(missing).toEqual([]);
  });

  it('plots the loss of every step event', () => {
    const [rows] = layerData(byName.loss!);
    expect(rows!.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rows!.map((r) => r.loss)).toEqual([1, 2, 3, 4, 5, 6].map((s) => 2.5 - s * 0.2));
  });

  it('plots the test accuracy of every epoch event', () => {
    const [rows] = layerData(byName.accuracy!);
    expect(rows).toEqual([{ epoch: 1, testAccuracy: 0.5 }, { epoch: 2, testAccuracy: 0.75 }]);
  });

  it('derives samples/s per epoch from the steps\' samples and the epoch seconds, and draws the done event\'s as a rule', () => {
    expect(epochThroughput(events)).toEqual([
      { epoch: 1, samples: 96, seconds: 2, samplesPerSec: 48 },
      { epoch: 2, samples: 96, seconds: 0.5, samplesPerSec: 192 },
    ]);
    const [bars, rule] = layerData(byName.throughput!);
    expect(bars!.map((r) => r.samplesPerSec)).toEqual([48, 192]);
    expect(rule!.map((r) => r.samplesPerSec)).toEqual([150]);
  });

  it('stacks the done event\'s breakdown by phase, in its order', () => {
    const [rows] = layerData(byName.breakdown!);
    expect(rows!.map((r) => [r.phase, r.ms])).toEqual([['compute', 30], ['allreduce', 4], ['waiting', 2], ['optimizer', 1], ['other', 0.5]]);
    expect(new Set(rows!.map((r) => r.run))).toEqual(new Set(['2 workers, ring, wasm']));
  });

  it('renders one mark per data point', async () => {
    expect(markCounts(await specToSvg(byName.loss!.spec))).toMatchObject({ line: 1, symbol: 6 });
    expect(markCounts(await specToSvg(byName.accuracy!.spec))).toMatchObject({ line: 1, symbol: 2 });
    expect(markCounts(await specToSvg(byName.throughput!.spec))).toMatchObject({ rect: 2, rule: 1 });
    expect(markCounts(await specToSvg(byName.breakdown!.spec))).toMatchObject({ rect: 5 });
  });

  it('skips, with a reason, the charts whose events are missing', () => {
    const onlySteps = parseRunEvents('{"event":"step","step":1,"epoch":1,"loss":2.3,"samples":64}\n', 'x.ndjson');
    const r = runCharts(onlySteps);
    expect(r.charts.map((c) => c.name)).toEqual(['loss']);
    expect(r.missing.map((m) => m.split(' ')[0])).toEqual(['accuracy', 'throughput', 'breakdown']);
  });
});

describe('ddp report: bad files', () => {
  const bad = (text: string) => () => parseRunEvents(text, 'run.ndjson');
  it('an empty file', () => {
    expect(bad('')).toThrow(UsageError);
    expect(bad('\n  \n')).toThrow(/run\.ndjson is empty/);
  });
  it('a line that is not JSON, named by its number', () => {
    expect(bad('{"event":"step","step":1,"loss":2}\nbackend: wasm\n')).toThrow(/^run\.ndjson:2: not JSON/);
    expect(bad('[1,2]\n')).toThrow(/^run\.ndjson:1: not a ddp event/);
  });
  it('a file without step events', () => {
    expect(bad('{"event":"start","workers":0}\n{"event":"done","steps":0}\n')).toThrow(/^run\.ndjson has no step events/);
  });
});

describe('bench scaling plots', () => {
  const run = (workers: number, allreduce: string | undefined, samplesPerSec: number, efficiency?: number, efficiencyVsSingleProcess?: number) =>
    ({ workers, allreduce, samplesPerSec, efficiency, efficiencyVsSingleProcess }) as ScalingRun;
  type Panels = { hconcat: Array<{ layer: Array<{ data: { values: Array<Record<string, unknown>> } }> }> };

  it('strong: samples/s against N with the ideal N x the 1-worker run, and both efficiencies', () => {
    const spec = scalingSpec({ batchSize: 64, runs: [run(0, undefined, 100), run(1, 'ring', 90, 1, 0.9), run(2, 'ring', 150, 150 / 180, 0.75)] }) as unknown as Panels;
    const [ideal, measured] = spec.hconcat[0]!.layer.map((l) => l.data.values);
    expect(measured!.map((p) => [p.series, p.workers, p.samplesPerSec])).toEqual([['one process (--workers 0)', 1, 100], ['ring', 1, 90], ['ring', 2, 150]]);
    expect(ideal!.map((p) => [p.series, p.workers, p.samplesPerSec])).toEqual([['ring', 1, 90], ['ring', 2, 180]]);
    const [rule, efficiency] = spec.hconcat[1]!.layer.map((l) => l.data.values);
    expect(rule).toEqual([{ ideal: 1 }]);
    expect(efficiency!.map((p) => [p.workers, p.against, p.value])).toEqual([[1, '1 worker', 1], [1, 'one process', 0.9], [2, '1 worker', 150 / 180], [2, 'one process', 0.75]]);
  });

  it('weak: median samples/s against N with the ideal N x one process, and the median ratio', async () => {
    const summary = [
      { workers: 0, allreduce: undefined, batchSize: 64, samplesPerSec: [100], medianSamplesPerSec: 100, ratios: [], medianRatio: null },
      { workers: 2, allreduce: 'star', batchSize: 128, samplesPerSec: [180], medianSamplesPerSec: 180, ratios: [0.9], medianRatio: 0.9 },
    ];
    const spec = weakScalingSpec({ perWorkerBatch: 64, rounds: 1, summary });
    const [ideal, measured] = (spec as unknown as Panels).hconcat[0]!.layer.map((l) => l.data.values);
    expect(ideal!.map((p) => [p.workers, p.samplesPerSec])).toEqual([[1, 100], [2, 200]]);
    expect(measured!.map((p) => [p.series, p.workers, p.samplesPerSec])).toEqual([['one process (--workers 0)', 1, 100], ['star', 2, 180]]);
    const [, ratio] = (spec as unknown as Panels).hconcat[1]!.layer.map((l) => l.data.values);
    expect(ratio!.map((p) => [p.workers, p.value])).toEqual([[2, 0.9]]);
    expect(markCounts(await specToSvg(spec))).toMatchObject({ symbol: 3, rule: 1 });
  });
});
