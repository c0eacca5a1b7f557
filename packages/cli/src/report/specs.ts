/**
 * Vega-lite specs for ddp's plots, built from data only (no rendering here; render.ts does that):
 *
 *   runCharts(events)      a training run's NDJSON events (`ddp report`):
 *     loss        loss of every step event against its step
 *     accuracy    test accuracy of every epoch event against its epoch
 *     throughput  samples/s per epoch: the samples of the epoch's step events over the epoch event's
 *                 `seconds` (the epoch's wall time, its evaluation included: a file has no times per
 *                 step), beside the done event's samplesPerSec (training time only) as a rule
 *     breakdown   the done event's mean ms per step by phase, as a stacked bar (ddp averages the
 *                 phases over the workers, so a run has one bar)
 *   scalingChart(result)   `ddp bench scaling`: samples/s and efficiency against N, beside the ideal
 *   weakScalingChart(result)  `ddp bench scaling --weak`: samples/s and the ratio against N, beside the ideal
 */
import type { TopLevelSpec } from 'vega-lite';
import type { RunEvents } from './read-run.js';
import type { ScalingRun } from '../bench/scaling-bench.js';
import type { WeakScalingSummary } from '../bench/weak-scaling-bench.js';

/** One plot: its file name without extension, and its vega-lite spec. */
export interface Chart {
  name: string;
  spec: TopLevelSpec;
}

/** The font the renderer loads for PNGs (render.ts); SVG viewers fall back to any sans-serif. */
export const CHART_FONT = 'DejaVu Sans, Verdana, sans-serif';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const WIDTH = 520;
const HEIGHT = 260;

const CONFIG = {
  font: CHART_FONT,
  background: 'white',
  title: { fontSize: 15, subtitleFontSize: 11, subtitleColor: '#555', anchor: 'start' as const },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 600 },
};

/** "one process, wasm" or "2 workers, ring, wasm". */
export function runLabel(events: RunEvents): string {
  const { workers, allreduce, backend } = events.summary;
  const who = workers === undefined ? 'run' : workers === 0 ? 'one process' : `${workers} worker${workers === 1 ? '' : 's'}`;
  return [who, workers ? allreduce : undefined, backend].filter(Boolean).join(', ');
}

export function lossSpec(events: RunEvents): TopLevelSpec {
  return {
    $schema: SCHEMA,
    title: { text: 'Training loss per step', subtitle: `${runLabel(events)}: the loss of each step's global batch (step events)` },
    width: WIDTH,
    height: HEIGHT,
    data: { values: events.steps.map((s) => ({ step: s.step, epoch: s.epoch, loss: s.loss })) },
    mark: { type: 'line', point: { size: 28 }, strokeWidth: 2 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'loss', type: 'quantitative', title: 'loss (cross-entropy)' },
    },
    config: CONFIG,
  };
}

export function accuracySpec(events: RunEvents): TopLevelSpec {
  const rows = events.epochs.filter((e) => e.testAccuracy !== undefined).map((e) => ({ epoch: e.epoch, testAccuracy: e.testAccuracy }));
  return {
    $schema: SCHEMA,
    title: { text: 'Test accuracy per epoch', subtitle: `${runLabel(events)}: epoch events` },
    width: WIDTH,
    height: HEIGHT,
    data: { values: rows },
    mark: { type: 'line', point: { size: 60 }, strokeWidth: 2 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' }, scale: { domain: [0, Math.max(1, ...rows.map((r) => r.epoch))] } },
      y: { field: 'testAccuracy', type: 'quantitative', title: 'test accuracy', axis: { format: '.0%' }, scale: { domain: [0, 1] } },
    },
    config: CONFIG,
  };
}

/** Samples/s of each epoch: the samples of its step events over its epoch event's seconds. */
export function epochThroughput(events: RunEvents): Array<{ epoch: number; samples: number; seconds: number; samplesPerSec: number }> {
  const rows = [];
  for (const e of events.epochs) {
    if (e.seconds === undefined || !(e.seconds > 0)) continue;
    const samples = events.steps.filter((s) => s.epoch === e.epoch).reduce((sum, s) => sum + s.samples, 0);
    if (samples > 0) rows.push({ epoch: e.epoch, samples, seconds: e.seconds, samplesPerSec: samples / e.seconds });
  }
  return rows;
}

const PER_EPOCH = 'per epoch (samples / epoch seconds, evaluation included)';
const WHOLE_RUN = 'whole run (done event: training time only)';

export function throughputSpec(events: RunEvents): TopLevelSpec | undefined {
  const perEpoch = epochThroughput(events);
  const overall = events.summary.samplesPerSec;
  if (perEpoch.length === 0 && overall === undefined) return undefined;
  const series = { field: 'series', type: 'nominal' as const, title: null, scale: { domain: [PER_EPOCH, WHOLE_RUN], range: ['#4c78a8', '#e45756'] }, legend: { orient: 'bottom' as const, direction: 'vertical' as const } };
  const layers: object[] = [];
  if (perEpoch.length > 0) {
    layers.push({
      data: { values: perEpoch.map((r) => ({ ...r, series: PER_EPOCH })) },
      mark: { type: 'bar', width: { band: 0.6 } },
      encoding: {
        x: { field: 'epoch', type: 'ordinal', title: 'epoch', axis: { labelAngle: 0 } },
        y: { field: 'samplesPerSec', type: 'quantitative', title: 'samples/s' },
        color: series,
      },
    });
  }
  if (overall !== undefined) {
    layers.push({
      data: { values: [{ samplesPerSec: overall, series: WHOLE_RUN }] },
      mark: { type: 'rule', strokeWidth: 2, strokeDash: [6, 4] },
      encoding: { y: { field: 'samplesPerSec', type: 'quantitative', title: 'samples/s' }, color: series },
    });
  }
  return {
    $schema: SCHEMA,
    title: { text: 'Throughput', subtitle: `${runLabel(events)}: samples/s per epoch and over the whole run` },
    width: WIDTH,
    height: HEIGHT,
    layer: layers,
    config: CONFIG,
  } as TopLevelSpec;
}

export function breakdownSpec(events: RunEvents): TopLevelSpec | undefined {
  const b = events.summary.breakdown;
  if (!b) return undefined;
  const label = runLabel(events);
  const phases = Object.keys(b);
  const total = phases.reduce((s, p) => s + b[p]!, 0);
  return {
    $schema: SCHEMA,
    title: { text: 'Step breakdown', subtitle: `mean ms per step by phase (done event; ${total.toFixed(1)} ms in all, averaged over the workers)` },
    width: WIDTH,
    height: 70,
    data: { values: phases.map((phase, order) => ({ run: label, phase, ms: b[phase], order })) },
    mark: { type: 'bar', height: { band: 0.7 } },
    encoding: {
      y: { field: 'run', type: 'nominal', title: null, axis: { labelLimit: 400 } },
      x: { field: 'ms', type: 'quantitative', title: 'ms per step', stack: 'zero' },
      color: { field: 'phase', type: 'nominal', title: 'phase', scale: { domain: phases }, legend: { orient: 'bottom', direction: 'horizontal' } },
      order: { field: 'order', type: 'quantitative' },
      tooltip: [{ field: 'phase' }, { field: 'ms', format: '.2f' }],
    },
    config: CONFIG,
  } as TopLevelSpec;
}

/** The charts of one run, in file order; a chart whose events the file lacks is left out (see `missing`). */
export function runCharts(events: RunEvents): { charts: Chart[]; missing: string[] } {
  const charts: Chart[] = [{ name: 'loss', spec: lossSpec(events) }];
  const missing: string[] = [];
  if (events.epochs.some((e) => e.testAccuracy !== undefined)) charts.push({ name: 'accuracy', spec: accuracySpec(events) });
  else missing.push('accuracy (the file has no epoch events with testAccuracy)');
  const tput = throughputSpec(events);
  if (tput) charts.push({ name: 'throughput', spec: tput });
  else missing.push('throughput (the file has no epoch events with seconds and no done event with samplesPerSec)');
  const breakdown = breakdownSpec(events);
  if (breakdown) charts.push({ name: 'breakdown', spec: breakdown });
  else missing.push('breakdown (the file has no done event with a breakdown)');
  return { charts, missing };
}

// ---------------------------------------------------------------- scaling benchmarks

const ONE_PROCESS = 'one process (--workers 0)';
const seriesOf = (workers: number, allreduce: string | undefined) => (workers === 0 ? ONE_PROCESS : (allreduce ?? 'default'));

interface ScalingPoint {
  series: string;
  workers: number;
  samplesPerSec: number;
}

/** Two panels side by side: samples/s against N with the ideal dashed, and an efficiency against N with the ideal rule at 1. */
function scalingPanels(o: {
  title: string;
  subtitle: string[];
  measured: ScalingPoint[];
  ideal: ScalingPoint[];
  idealLabel: string;
  efficiency: Array<{ series: string; workers: number; value: number; against: string }>;
  efficiencyTitle: string;
  maxWorkers: number;
}): TopLevelSpec {
  const x = { field: 'workers', type: 'quantitative' as const, title: 'workers N (one process drawn at N = 1)', scale: { domain: [0, o.maxWorkers + 0.5] }, axis: { tickMinStep: 1, format: 'd' } };
  const color = { field: 'series', type: 'nominal' as const, title: 'allreduce', legend: { orient: 'bottom' as const, direction: 'vertical' as const } };
  const width = 360;
  const height = 260;
  return {
    $schema: SCHEMA,
    title: { text: o.title, subtitle: o.subtitle },
    hconcat: [
      {
        width,
        height,
        title: 'samples/s',
        layer: [
          {
            data: { values: o.ideal.map((p) => ({ ...p, line: o.idealLabel })) },
            mark: { type: 'line', strokeDash: [5, 4], color: '#888', strokeWidth: 1.5 },
            encoding: {
              x,
              y: { field: 'samplesPerSec', type: 'quantitative', title: 'samples/s' },
              detail: { field: 'series' },
              strokeDash: { field: 'line', type: 'nominal', title: null, scale: { range: [[5, 4]] }, legend: { orient: 'bottom', symbolStrokeColor: '#888', symbolStrokeWidth: 1.5 } },
            },
          },
          {
            data: { values: o.measured },
            mark: { type: 'line', point: { size: 70, filled: true }, strokeWidth: 2 },
            encoding: { x, y: { field: 'samplesPerSec', type: 'quantitative', title: 'samples/s' }, color, tooltip: [{ field: 'series' }, { field: 'workers' }, { field: 'samplesPerSec', format: '.1f' }] },
          },
        ],
      },
      {
        width,
        height,
        title: o.efficiencyTitle,
        layer: [
          { data: { values: [{ ideal: 1 }] }, mark: { type: 'rule', strokeDash: [5, 4], color: '#888', strokeWidth: 1.5 }, encoding: { y: { field: 'ideal', type: 'quantitative' } } },
          {
            data: { values: o.efficiency },
            mark: { type: 'line', point: { size: 70, filled: true }, strokeWidth: 2 },
            encoding: {
              x,
              y: { field: 'value', type: 'quantitative', title: o.efficiencyTitle, axis: { format: '.0%' }, scale: { domainMin: 0, domainMax: Math.max(1.1, ...o.efficiency.map((e) => e.value)) } },
              color,
              shape: { field: 'against', type: 'nominal', title: 'against', legend: { orient: 'bottom', direction: 'vertical' } },
              detail: { field: 'against' },
              tooltip: [{ field: 'series' }, { field: 'workers' }, { field: 'against' }, { field: 'value', format: '.1%' }],
            },
          },
        ],
      },
    ],
    resolve: { scale: { color: 'shared' } },
    config: CONFIG,
  } as TopLevelSpec;
}

/** `ddp bench scaling` (strong): samples/s and efficiency against N; ideal = N x samples/s of the 1-worker run of the same allreduce (or, without one, of the single process). */
export function scalingSpec(result: { batchSize: number; runs: readonly ScalingRun[] }): TopLevelSpec {
  const measured: ScalingPoint[] = result.runs.map((r) => ({ series: seriesOf(r.workers, r.allreduce), workers: Math.max(1, r.workers), samplesPerSec: r.samplesPerSec }));
  const single = result.runs.find((r) => r.workers === 0);
  const ideal: ScalingPoint[] = [];
  for (const series of new Set(result.runs.filter((r) => r.workers > 0).map((r) => seriesOf(r.workers, r.allreduce)))) {
    const runs = result.runs.filter((r) => r.workers > 0 && seriesOf(r.workers, r.allreduce) === series);
    const base = runs.find((r) => r.workers === 1)?.samplesPerSec ?? single?.samplesPerSec;
    if (base === undefined) continue;
    for (const n of [...new Set([1, ...runs.map((r) => r.workers)])].sort((a, b) => a - b)) ideal.push({ series, workers: n, samplesPerSec: n * base });
  }
  const efficiency = result.runs.flatMap((r) => [
    ...(r.efficiency !== undefined ? [{ series: seriesOf(r.workers, r.allreduce), workers: r.workers, value: r.efficiency, against: '1 worker' }] : []),
    ...(r.efficiencyVsSingleProcess !== undefined ? [{ series: seriesOf(r.workers, r.allreduce), workers: r.workers, value: r.efficiencyVsSingleProcess, against: 'one process' }] : []),
  ]);
  return scalingPanels({
    title: 'Strong scaling',
    subtitle: [
      `global batch ${result.batchSize} split over the N workers; samples/s over the timed steps`,
      'efficiency = samples/s_N / (N x samples/s of 1 worker, or of one process); dashed: ideal',
    ],
    measured,
    ideal,
    idealLabel: 'ideal: N x samples/s of 1 worker',
    efficiency,
    efficiencyTitle: 'efficiency',
    maxWorkers: Math.max(1, ...result.runs.map((r) => r.workers)),
  });
}

/** `ddp bench scaling --weak`: median samples/s and ratio against N; ideal = N x median samples/s of the single process. */
export function weakScalingSpec(result: { perWorkerBatch: number; rounds: number; summary: readonly WeakScalingSummary[] }): TopLevelSpec {
  const measured: ScalingPoint[] = result.summary.map((s) => ({ series: seriesOf(s.workers, s.allreduce), workers: Math.max(1, s.workers), samplesPerSec: s.medianSamplesPerSec }));
  const single = result.summary.find((s) => s.workers === 0);
  const ns = [...new Set([1, ...result.summary.map((s) => Math.max(1, s.workers))])].sort((a, b) => a - b);
  const ideal = single ? ns.map((n) => ({ series: ONE_PROCESS, workers: n, samplesPerSec: n * single.medianSamplesPerSec })) : [];
  const efficiency = result.summary
    .filter((s) => s.medianRatio !== null)
    .map((s) => ({ series: seriesOf(s.workers, s.allreduce), workers: s.workers, value: s.medianRatio!, against: 'one process' }));
  return scalingPanels({
    title: 'Weak scaling',
    subtitle: [
      `batch ${result.perWorkerBatch} per worker (N x ${result.perWorkerBatch} on N workers), median of ${result.rounds} round${result.rounds === 1 ? '' : 's'}`,
      'ratio = samples/s_N / (N x samples/s of one process); dashed: ideal',
    ],
    measured,
    ideal,
    idealLabel: 'ideal: N x samples/s of one process',
    efficiency,
    efficiencyTitle: 'ratio',
    maxWorkers: Math.max(1, ...result.summary.map((s) => s.workers)),
  });
}
