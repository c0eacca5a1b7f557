/**
 * `ddp bench allreduce`: star and ring allreduce between N real processes over the WebSocket peer
 * transport, for each vector size, with the NCCL-tests figures (doc/PERFORMANCE.md there):
 *
 *   time   iterations run back to back after a barrier; on each rank an iteration's time is the gap
 *          between its completion and the previous one; an iteration counts as its slowest rank's
 *          time; the table shows the median (and the 10th/90th percentiles) over the timed iterations
 *   algbw  = bytes / time, bytes = floats x 4 (the float32 vector, whatever travels)
 *   busbw  = algbw x 2(N-1)/N, comparable across N: what each link carried, per second
 *
 * For each worker count one group of N processes runs every (size, algorithm, compression) case in
 * turn, linked by the union of the algorithms' topologies. Star's root is rank 0, one of the N.
 */
import os from 'node:os';
import { algBandwidth, busBandwidth, defaultResultFile, median, newToken, quantile, resultHeader, TOKEN_ENV, writeResultFile, type ResultHeader } from '@ddp/core';
import { MemberGroup } from './member-group.js';
import type { BenchAlgo, BenchCompress, MemberCase } from './member-messages.js';
import { UsageError } from '../args.js';

export interface AllreduceBenchOptions {
  workers: number[];
  sizes: number[];
  algos: BenchAlgo[];
  compress: BenchCompress[];
  iters: number;
  warmup: number;
  /** Listen address per rank (default 127.0.0.1 for all). */
  hosts?: string[];
  execPrefix?: string;
  chunkBytes?: number;
  recvTimeoutMs: number;
  connectTimeoutMs: number;
  out?: string;
  mainJs: string;
  log: (line: string) => void;
  /** Members' stderr (default: our stderr, prefixed). */
  onMemberOutput?: (rank: number, line: string) => void;
}

export interface AllreduceRow {
  workers: number;
  algo: BenchAlgo;
  compress: BenchCompress;
  floats: number;
  /** floats x 4: the size NCCL-tests divides by. */
  bytes: number;
  /** Bytes one member puts on the wire per vector (halved by fp16). */
  wireBytes: number;
  iters: number;
  warmup: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  minMs: number;
  algbwGBps: number;
  busbwGBps: number;
  /** Elements of the last result, on any rank, that differ from the exact sum (0 expected). */
  mismatches: number;
  /** Per timed iteration, the slowest rank's ms. */
  iterationMs: number[];
  /** Per rank, its median ms. */
  rankMedianMs: number[];
}

export interface AllreduceBenchResult extends ResultHeader<'allreduce'> {
  transport: { kind: 'websocket'; hosts: string[]; chunkBytes: number | 'default'; execPrefix?: string };
  definitions: Record<string, string>;
  rows: AllreduceRow[];
  /** Time to link up each group (slowest member), by worker count. */
  connectMs: Record<string, number>;
  file: string;
}

export function casesFor(o: Pick<AllreduceBenchOptions, 'sizes' | 'algos' | 'compress' | 'iters' | 'warmup'>): MemberCase[] {
  const cases: MemberCase[] = [];
  for (const compress of o.compress) {
    for (const floats of o.sizes) {
      for (const algo of o.algos) cases.push({ id: cases.length, algo, floats, compress, iters: o.iters, warmup: o.warmup });
    }
  }
  return cases;
}

export async function runAllreduceBench(o: AllreduceBenchOptions): Promise<AllreduceBenchResult> {
  const rows: AllreduceRow[] = [];
  const connectMs: Record<string, number> = {};
  const cases = casesFor(o);
  const maxN = Math.max(...o.workers);
  const hosts = o.hosts ?? [];
  if (hosts.length > 1 && hosts.length < maxN) throw new UsageError(`--hosts lists ${hosts.length} addresses but --workers goes up to ${maxN}`);
  const hostOf = (r: number): string => hosts[hosts.length === 1 ? 0 : r] ?? '127.0.0.1';

  const loadAtStart = os.loadavg()[0]!;
  o.log(header(o));
  o.log(tableHead());
  for (const n of o.workers) {
    const token = newToken();
    const group = new MemberGroup({
      size: n,
      mainJs: o.mainJs,
      execPrefix: o.execPrefix,
      env: { [TOKEN_ENV]: token },
      listenTimeoutMs: 60_000,
      onOutput: o.onMemberOutput ?? ((rank, line) => process.stderr.write(`[member ${rank}] ${line}\n`)),
      args: (rank) => [
        'bench', 'allreduce-member',
        '--rank', String(rank),
        '--size', String(n),
        '--host', hostOf(rank),
        '--topology', o.algos.join(','),
        '--recv-timeout-ms', String(o.recvTimeoutMs),
        '--connect-timeout-ms', String(o.connectTimeoutMs),
        ...(o.chunkBytes ? ['--chunk-bytes', String(o.chunkBytes)] : []),
      ],
    });
    try {
      await group.start(cases);
      const connected = await group.collect('connected', o.connectTimeoutMs + 10_000);
      connectMs[String(n)] = Math.max(...connected.map((c) => c.ms));
      for (const c of cases) {
        // Generous: the members' own receive timeout is what catches a stuck collective.
        const perCase = (c.iters + c.warmup) * 2 * o.recvTimeoutMs + 60_000;
        const lines = await group.collect('case', perCase, (m) => m.type === 'case' && m.id === c.id);
        const row = summarise(n, c, lines.map((l) => l.ms), lines.reduce((s, l) => s + l.mismatches, 0));
        rows.push(row);
        o.log(tableRow(row));
      }
      await group.collect('finished', 60_000);
      await group.end();
    } catch (err) {
      await group.abort();
      throw err;
    }
  }
  const mismatched = rows.filter((r) => r.mismatches > 0);
  if (mismatched.length) o.log(`WARNING: ${mismatched.length} case(s) returned wrong sums (see the check column)`);
  const result = {
    ...resultHeader('allreduce'),
    transport: { kind: 'websocket' as const, hosts: o.workers.length ? Array.from({ length: maxN }, (_, r) => hostOf(r)) : [], chunkBytes: o.chunkBytes ?? ('default' as const), ...(o.execPrefix ? { execPrefix: o.execPrefix } : {}) },
    definitions: {
      time: 'iterations back to back after a barrier; per rank, the gap between consecutive completions; per iteration, the slowest rank',
      bytes: 'floats x 4 (float32), whatever compression puts on the wire',
      algbw: 'bytes / time (GB/s = 1e9 bytes/s)',
      busbw: 'algbw x 2(N-1)/N (NCCL-tests allreduce bus bandwidth)',
    },
    rows,
    connectMs,
  };
  const file = writeResultFile(o.out ?? defaultResultFile('allreduce'), { ...result, loadAverage1mAtStart: loadAtStart });
  o.log(`load average (1 min): ${loadAtStart.toFixed(2)} at start, ${os.loadavg()[0]!.toFixed(2)} at the end, on ${os.availableParallelism()} cores`);
  o.log(`written ${file}`);
  return { ...result, file };
}

/** One table row from the members' per-iteration times (msByRank[r][k]). */
export function summarise(workers: number, c: MemberCase, msByRank: number[][], mismatches: number): AllreduceRow {
  const iterationMs = msByRank[0]!.map((_, k) => Math.max(...msByRank.map((ms) => ms[k]!)));
  const med = median(iterationMs);
  const bytes = c.floats * 4;
  return {
    workers,
    algo: c.algo,
    compress: c.compress,
    floats: c.floats,
    bytes,
    wireBytes: c.compress === 'fp16' ? c.floats * 2 : bytes,
    iters: c.iters,
    warmup: c.warmup,
    medianMs: med,
    p10Ms: quantile(iterationMs, 0.1),
    p90Ms: quantile(iterationMs, 0.9),
    minMs: Math.min(...iterationMs),
    algbwGBps: algBandwidth(bytes, med / 1000) / 1e9,
    busbwGBps: busBandwidth(bytes, med / 1000, workers) / 1e9,
    mismatches,
    iterationMs,
    rankMedianMs: msByRank.map((ms) => median(ms)),
  };
}

function header(o: AllreduceBenchOptions): string {
  const where = o.hosts?.length ? o.hosts.slice(0, 3).join(', ') + (o.hosts.length > 3 ? ', ...' : '') : '127.0.0.1 (loopback)';
  return [
    `allreduce of float32 vectors between N processes over WebSockets on ${where}; star root = rank 0`,
    `time = per iteration (back to back), the slowest rank's; median of ${o.iters} after ${o.warmup} warm-up (p10/p90 beside it)`,
    'algbw = floats*4 / time, busbw = algbw * 2(N-1)/N (NCCL-tests definitions); GB/s = 1e9 B/s',
  ].join('\n');
}

const COLS: Array<[string, number]> = [
  ['N', 3], ['algo', 6], ['compress', 9], ['floats', 10], ['bytes', 11], ['median ms', 11], ['p10 ms', 10], ['p90 ms', 10], ['algbw GB/s', 11], ['busbw GB/s', 11], ['check', 7],
];

function tableHead(): string {
  return COLS.map(([name, w]) => name.padStart(w)).join(' ');
}

export function tableRow(r: AllreduceRow): string {
  const ms = (x: number) => (x >= 100 ? x.toFixed(1) : x >= 10 ? x.toFixed(2) : x.toFixed(3));
  const cells = [
    String(r.workers), r.algo, r.compress, String(r.floats), String(r.bytes), ms(r.medianMs), ms(r.p10Ms), ms(r.p90Ms),
    r.algbwGBps.toFixed(3), r.busbwGBps.toFixed(3), r.mismatches === 0 ? 'ok' : `BAD:${r.mismatches}`,
  ];
  return cells.map((c, i) => c.padStart(COLS[i]![1])).join(' ');
}
