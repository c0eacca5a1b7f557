/**
 * Encrypted, authenticated links with real processes: `ddp certs` makes a job CA and a node
 * certificate; a coordinator serves wss:// and https:// with it; ring workers link to each other over
 * mutual TLS and train to the bits of the in-process reference. Refused, each with exit code 3 and a
 * one-line DDP_* message: a plaintext worker on the TLS port, a certificate that does not verify, a
 * wrong token, a ring worker without its own certificate, and a TLS worker on a plaintext port. The
 * token never shows in any output; binding beyond loopback without one generates it and prints it once.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as http from 'node:http';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { bitwiseEqual, readWeights, startCoordinator, startWorker, stepNumbers, tmpDir, type Live } from './distributed-helpers.js';
import { loadTrain, referenceOverSegments } from './reference.js';

const LIMIT_TRAIN = 640;
const SEED = 11;
const STEPS = 8;
// --reduction fast: the ring run is checked against the fast in-process ring reference (float32 chunks over TLS).
const job = ['--reduction', 'fast', '--max-steps', String(STEPS), '--batch-size', '64', '--seed', String(SEED), '--limit-train', String(LIMIT_TRAIN), '--limit-test', '100', '--backend', 'wasm'];

async function makeCerts(hosts: string): Promise<string> {
  const dir = path.join(tmpDir(), 'certs');
  const r = await runCli(['certs', '--out', dir, '--hosts', hosts]);
  expect(r.code, r.stderr).toBe(0);
  return dir;
}

const get = (url: string, ca?: Buffer) =>
  new Promise<{ status: number; body: string; refusal?: string }>((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    mod.get(url, ca ? { ca } : {}, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, refusal: res.headers['x-ddp-refusal'] as string | undefined }));
    }).on('error', reject);
  });

/** A worker that must be refused: exit code 3 and one line on stderr naming `code`. */
async function expectRefused(w: Live, code: string): Promise<string> {
  const e = await w.exit;
  const lines = w.stderr().trim().split('\n').filter((l) => l.startsWith('ddp worker:'));
  expect(e.code, w.stderr()).toBe(3);
  expect(lines, w.stderr()).toHaveLength(1);
  expect(lines[0]).toContain(code);
  return lines[0]!;
}

describe('TLS and tokens (real processes)', () => {
  it('ddp certs writes a CA, a node certificate for the hosts (server and client) and a key only its owner reads', async () => {
    const dir = await makeCerts('localhost,127.0.0.1,node-2.example');
    const ca = new X509Certificate(fs.readFileSync(path.join(dir, 'ca.crt')));
    const node = new X509Certificate(fs.readFileSync(path.join(dir, 'node.crt')));
    expect(ca.ca).toBe(true);
    expect(node.ca).toBe(false);
    expect(node.checkIssued(ca)).toBe(true);
    expect(node.verify(ca.publicKey)).toBe(true);
    expect(node.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, DNS:node-2.example');
    expect(node.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])); // serverAuth, clientAuth
    expect(node.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(dir, 'node.key'))))).toBe(true);
    expect(fs.statSync(path.join(dir, 'node.key')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir).sort()).toEqual(['ca.crt', 'node.crt', 'node.key']); // the CA key is not kept
    const again = await runCli(['certs', '--out', dir, '--hosts', 'localhost']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already holds ca\.crt, node\.crt, node\.key: pass --force/);
    const bad = await runCli(['certs', '--out', tmpDir(), '--hosts', 'bad host']);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, "ddp: --hosts: 'bad host' is neither a host name nor an IP address"]);
  });

  it('ring over TLS: refusals while it waits, then two workers with peer TLS train to the reference bits; the token is never printed', async () => {
    const certs = await makeCerts('127.0.0.1');
    const other = await makeCerts('127.0.0.1'); // another job's CA
    const f = (d: string, n: string) => path.join(d, n);
    const TOKEN = 'e2e-tls-secret-token';
    const ENV = { DDP_TOKEN: TOKEN };
    const out = tmpDir();
    const { coord, url, port } = await startCoordinator(['--workers', '2', '--allreduce', 'ring', ...job, '--out', out, '--tls-cert', f(certs, 'node.crt'), '--tls-key', f(certs, 'node.key')], ENV);
    expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    const plainUrl = url.replace('wss:', 'ws:');
    const ca = ['--tls-ca', f(certs, 'ca.crt')];
    const mine = [...ca, '--tls-cert', f(certs, 'node.crt'), '--tls-key', f(certs, 'node.key')];

    // The HTTP side is https:// too; plaintext gets a 400 naming the code.
    expect(await get(`https://127.0.0.1:${port}/healthz`, fs.readFileSync(f(certs, 'ca.crt')))).toMatchObject({ status: 200, body: 'ok\n' });
    const plain = await get(`http://127.0.0.1:${port}/healthz`);
    expect(plain.status).toBe(400);
    expect(plain.refusal).toMatch(/^DDP_TLS_REQUIRED: /);

    const refusals = [
      [startWorker(plainUrl, ['--backend', 'wasm'], ENV), 'DDP_TLS_REQUIRED: this coordinator serves TLS only'],
      [startWorker(url, ['--backend', 'wasm'], ENV), 'DDP_TLS_UNVERIFIED: the certificate of wss://'], // system CAs only
      [startWorker(url, ['--backend', 'wasm', '--tls-ca', f(other, 'ca.crt')], ENV), 'DDP_TLS_UNVERIFIED: the certificate of wss://'],
      [startWorker(url, ['--backend', 'wasm', ...mine], { DDP_TOKEN: 'wrong-token' }), 'DDP_AUTH: wrong token'],
    ] as const;
    for (const [w, code] of refusals) await expectRefused(w, code);
    // A ring worker that verifies the coordinator but has no certificate for its peer links joins, then leaves.
    await expectRefused(startWorker(url, ['--backend', 'wasm', ...ca], ENV), 'DDP_TLS_REQUIRED: the coordinator serves TLS, so ring peer links must use it too');

    const workers = [0, 1].map(() => startWorker(url, ['--backend', 'wasm', ...mine], ENV));
    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect((await Promise.all(workers.map((w) => w.exit))).map((e) => e.code)).toEqual([0, 0]);
    expect(stepNumbers(coord.events())).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    // The coordinator said which connections it refused, and why.
    expect(coord.stderr()).toMatch(/refused a connection from 127\.0\.0\.1:\d+: DDP_TLS_REQUIRED/);
    expect(coord.stderr()).toMatch(/refused a connection from 127\.0\.0\.1:\d+: DDP_AUTH: wrong token/);
    const reference = await referenceOverSegments(SEED, loadTrain(LIMIT_TRAIN), STEPS, [{ from: 1, size: 2 }], { mode: 'ring' });
    expect(bitwiseEqual(readWeights(out), reference), 'TLS ring weights differ from the reference').toBe(true);
    for (const p of [coord, ...workers, ...refusals.map(([w]) => w)]) expect(p.stdout() + p.stderr()).not.toContain(TOKEN);
  }, 240_000);

  it('a TLS worker on a plaintext port is refused with DDP_TLS_UNSUPPORTED; beyond loopback without a token, one is generated and printed once', async () => {
    const certs = await makeCerts('127.0.0.1');
    const { coord, url } = await startCoordinator(['--workers', '1', '--allreduce', 'star', ...job, '--host', '0.0.0.0'], { DDP_TOKEN: '' });
    const m = coord.stderr().match(/no --token \(DDP_TOKEN\) was given: generated the token (\S+)/);
    expect(m, coord.stderr()).not.toBeNull();
    const token = m![1]!;
    const local = url.replace('0.0.0.0', '127.0.0.1');
    await expectRefused(startWorker(local.replace('ws:', 'wss:'), ['--backend', 'wasm', '--tls-ca', path.join(certs, 'ca.crt')], { DDP_TOKEN: token }), 'DDP_TLS_UNSUPPORTED');
    await expectRefused(startWorker(local, ['--backend', 'wasm'], { DDP_TOKEN: '' }), 'DDP_AUTH');
    const w = startWorker(local, ['--backend', 'wasm'], { DDP_TOKEN: token });
    expect((await coord.exit).code, coord.stderr()).toBe(0);
    expect((await w.exit).code).toBe(0);
    const all = coord.stdout() + coord.stderr();
    expect(all.split(token).length - 1).toBe(1); // printed once, never again
    expect(w.stdout() + w.stderr()).not.toContain(token);
  }, 180_000);
});
