/**
 * Many hosts, as far as one machine goes: bench/netns.sh puts the coordinator and 3 workers each in
 * its own network namespace with its own address (10.231.0.x) on a bridge, every link rate-limited
 * with `tc tbf` (100 Mbit/s each way). TLS is on: wss:// to the coordinator and mutual TLS between
 * ring peers, which link across the namespaces. The run must end with weights bitwise equal to the
 * same run on loopback without TLS. Needs root and iproute2; otherwise it says why and skips.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './cli-helpers.js';
import { bitwiseEqual, readWeights, startCoordinator, startWorker, stepNumbers, tmpDir, type DdpEventLine } from './distributed-helpers.js';

function whyNoNetns(): string | null {
  if (process.platform !== 'linux') return `network namespaces are Linux only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'making network namespaces needs root (CI runs as root)';
  for (const tool of ['ip', 'tc']) if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `'${tool}' is not installed (Debian: iproute2)`;
  const probe = `ddp-probe-${process.pid}`;
  const made = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.status !== 0) return `'ip netns add' failed: ${made.stderr.trim()}`;
  const tbf = spawnSync('ip', ['netns', 'exec', probe, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', '100mbit', 'burst', '98304', 'latency', '100ms'], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'del', probe]);
  if (tbf.status !== 0) return `'tc qdisc add ... tbf' failed: ${tbf.stderr.trim()}`;
  return null;
}

const skip = whyNoNetns();
if (skip) console.warn(`multihost.test.ts skipped: ${skip}`);

const WORKERS = 3;
const STEPS = 12;
const SEED = 9;
const job = ['--allreduce', 'ring', '--max-steps', String(STEPS), '--batch-size', '64', '--seed', String(SEED), '--limit-train', '1280', '--limit-test', '100', '--backend', 'wasm'];

function runNetns(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('bash', [path.join(REPO_ROOT, 'bench/netns.sh'), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('multi-host over network namespaces', () => {
  it.skipIf(skip !== null)(`coordinator + ${WORKERS} workers in namespaces, 100 Mbit/s tbf links, TLS: bitwise the loopback run`, async () => {
    const netOut = tmpDir();
    const logs = path.join(netOut, 'logs');
    const r = await runNetns(['train', String(WORKERS), '--rate', '100mbit', '--shaper', 'tbf', '--tls', '--logs', logs, '--', ...job, '--out', path.join(netOut, 'model'), '--log-format', 'json']);
    const workerLogs = fs.existsSync(logs) ? fs.readdirSync(logs).map((f) => `${f}:\n${fs.readFileSync(path.join(logs, f), 'utf8')}`).join('\n') : '';
    expect(r.code, `${r.stderr}\n${workerLogs}`).toBe(0);
    expect(r.stderr).toMatch(/4 namespaces .* 10\.231\.0\.1\.\.10\.231\.0\.4; tbf rate 100mbit each way/);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as DdpEventLine);
    expect(stepNumbers(events)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    // The ring's links go between the namespaces' addresses, over TLS.
    const formed = events.find((e) => e.event === 'ring_formed')!;
    const addresses = formed.addresses as string[];
    expect(addresses).toHaveLength(WORKERS);
    for (const a of addresses) expect(a).toMatch(/^wss:\/\/10\.231\.0\.[234]:\d+$/);
    expect(new Set(addresses.map((a) => new URL(a).hostname)).size).toBe(WORKERS);
    for (let i = 1; i <= WORKERS; i++) expect(fs.readFileSync(path.join(logs, `worker-${i}.log`), 'utf8')).toMatch(/connected to wss:\/\/10\.231\.0\.1:7070 as rank \d of 3/);

    // The same run on loopback, plaintext.
    const loopOut = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', String(WORKERS), ...job, '--out', loopOut], { DDP_TOKEN: 'e2e-multihost' });
    const workers = Array.from({ length: WORKERS }, () => startWorker(url, ['--backend', 'wasm'], { DDP_TOKEN: 'e2e-multihost' }));
    expect((await coord.exit).code, coord.stderr()).toBe(0);
    expect((await Promise.all(workers.map((w) => w.exit))).map((e) => e.code)).toEqual([0, 0, 0]);
    expect(bitwiseEqual(readWeights(path.join(netOut, 'model')), readWeights(loopOut)), 'namespaces+TLS weights differ from the loopback run').toBe(true);
  }, 240_000);
});
