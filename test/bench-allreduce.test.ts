/**
 * `ddp bench allreduce` end to end: real member processes on 127.0.0.1, the JSON it writes, the
 * NCCL-tests arithmetic on it, and what the surviving members report when one is killed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from './cli-helpers.js';
import { MemberGroup } from '../packages/cli/dist/bench/member-group.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-bench-allreduce-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Row {
  workers: number;
  algo: string;
  compress: string;
  floats: number;
  bytes: number;
  wireBytes: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  algbwGBps: number;
  busbwGBps: number;
  mismatches: number;
  iterationMs: number[];
  rankMedianMs: number[];
}

describe('ddp bench allreduce', () => {
  it('times star and ring between 2 processes and writes sane NCCL-tests figures', async () => {
    const out = path.join(tmp, 'two.json');
    const run = await runCli(['bench', 'allreduce', '--workers', '2', '--sizes', '1000,50000', '--iters', '5', '--warmup', '1', '--out', out], { timeoutMs: 60_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/algbw = floats\*4 \/ time, busbw = algbw \* 2\(N-1\)\/N/);
    expect(run.stdout).toMatch(/^\s+2\s+ring\s+none\s+50000\s+200000\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+ok$/m);
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(result.benchmark).toBe('allreduce');
    expect(result.machine.nproc).toBe(os.availableParallelism());
    expect(result.machine.cpuModel).toBe(os.cpus()[0]!.model);
    expect(result.machine.nodeVersion).toBe(process.version);
    const rows = result.rows as Row[];
    expect(rows.map((r) => `${r.algo}/${r.floats}`)).toEqual(['star/1000', 'ring/1000', 'star/50000', 'ring/50000']);
    for (const r of rows) {
      expect(r.mismatches).toBe(0);
      expect(r.iterationMs).toHaveLength(5);
      expect(r.rankMedianMs).toHaveLength(2);
      expect(r.bytes).toBe(r.floats * 4);
      expect(r.medianMs).toBeGreaterThan(0);
      expect(r.p10Ms).toBeLessThanOrEqual(r.medianMs);
      expect(r.medianMs).toBeLessThanOrEqual(r.p90Ms);
      expect(r.algbwGBps).toBeCloseTo(r.bytes / (r.medianMs / 1000) / 1e9, 9);
      expect(r.busbwGBps).toBeCloseTo(r.algbwGBps, 12); // 2(N-1)/N = 1 for N = 2
    }
  });

  it('runs fp16 rings of 3 with exact sums, and a list of worker counts in one go', async () => {
    const out = path.join(tmp, 'fp16.json');
    const run = await runCli(['bench', 'allreduce', '--workers', '2,3', '--sizes', '3001', '--algo', 'ring', '--compress', 'none,fp16', '--iters', '3', '--warmup', '0', '--chunk-bytes', '1024', '--out', out], { timeoutMs: 60_000 });
    expect(run.code, run.stderr).toBe(0);
    const rows = JSON.parse(fs.readFileSync(out, 'utf8')).rows as Row[];
    expect(rows.map((r) => `${r.workers}/${r.compress}`)).toEqual(['2/none', '2/fp16', '3/none', '3/fp16']);
    for (const r of rows) {
      expect(r.mismatches).toBe(0);
      expect(r.wireBytes).toBe(r.compress === 'fp16' ? r.floats * 2 : r.floats * 4);
      if (r.workers === 3) expect(r.busbwGBps).toBeCloseTo((r.algbwGBps * 4) / 3, 12);
    }
  });

  it('fails every surviving member of a ring, naming the dead one, when a member process is killed', async () => {
    const group = new MemberGroup({
      size: 4,
      mainJs: CLI,
      failFast: false,
      listenTimeoutMs: 30_000,
      env: { DDP_TOKEN: 'test-token' },
      onOutput: () => {},
      args: (rank) => ['bench', 'allreduce-member', '--rank', String(rank), '--size', '4', '--topology', 'ring', '--recv-timeout-ms', '60000'],
    });
    try {
      // Long enough to be mid-collective when the kill lands.
      await group.start([{ id: 0, algo: 'ring', floats: 1_000_000, compress: 'none', iters: 100_000, warmup: 0 }]);
      await group.collect('connected', 30_000);
      await new Promise((r) => setTimeout(r, 300));
      process.kill(group.pid(2)!, 'SIGKILL');
      const errors = await group.collect('error', 15_000, () => true, [0, 1, 3]);
      for (const e of errors) {
        expect([e.code, e.faultRank], e.message).toEqual(['PEER_FAILED', 2]);
        expect(e.message).toMatch(/rank 2 failed/);
      }
      await group.whenAllExited();
      expect(group.exitCodes).toEqual([1, 1, 'SIGKILL', 1]);
    } finally {
      await group.abort();
    }
  });

  it('says what is wrong with its flags, and its help lists them', async () => {
    const bad = await runCli(['bench', 'allreduce', '--workers', '1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--workers: 1 is out of range \[2, 256\]/);
    const badAlgo = await runCli(['bench', 'allreduce', '--algo', 'tree']);
    expect([badAlgo.code, badAlgo.stderr.trim()]).toEqual([2, "ddp: --algo: 'tree' is not one of star, ring (in 'tree')"]);
    const help = await runCli(['bench', 'allreduce', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--workers', '--sizes', '--algo', '--compress', '--iters', '--warmup', '--out', '--chunk-bytes', '--timeout', '--hosts', '--exec-prefix']) {
      expect(help.stdout).toContain(flag);
    }
    const top = await runCli(['bench', '--help']);
    for (const b of ['step', 'allreduce', 'scaling', 'simulate']) expect(top.stdout).toMatch(new RegExp(`^  ${b} `, 'm'));
    expect(top.stdout).not.toContain('allreduce-member');
  });
});
