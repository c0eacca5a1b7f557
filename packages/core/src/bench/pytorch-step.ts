/**
 * The seed step in PyTorch, for the per-core comparison in `ddp bench step`: the seed CNN (conv
 * 32-64-64 3x3 valid + relu, 2x2 max pools, dense 576-64-10), summed cross-entropy, Adam 1e-3,
 * batch 64, ONE thread, random inputs made before timing (no data pipeline timed), run as
 * `python3 -c PROGRAM STEPS`; it prints samples/s over STEPS steps after 10 warm-up steps.
 * Debian: `apt-get install python3-torch libopenblas0-pthread`.
 */
import { execFile } from 'node:child_process';

export const PYTORCH_STEP_PROGRAM = `
import sys, time, torch, torch.nn as nn
torch.set_num_threads(1); torch.manual_seed(0)
steps = int(sys.argv[1]); batch = int(sys.argv[2])
net = nn.Sequential(nn.Conv2d(1,32,3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32,64,3), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(64,64,3), nn.ReLU(), nn.Flatten(), nn.Linear(576,64), nn.ReLU(), nn.Linear(64,10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
x = torch.rand(steps + 10, batch, 1, 28, 28); y = torch.randint(0, 10, (steps + 10, batch))
loss = nn.CrossEntropyLoss(reduction='sum')
def step(i):
    opt.zero_grad(); loss(net(x[i]), y[i]).backward(); opt.step()
for i in range(10): step(steps + i)
t0 = time.perf_counter()
for i in range(steps): step(i)
print(batch * steps / (time.perf_counter() - t0))
`;

/**
 * The figure the ratio falls back to where PyTorch is not installed: Debian's python3-torch 1.13.1
 * (oneDNN) on this repo's 2-core build machine (Intel Xeon, AVX2/FMA), one thread, batch 64, the
 * median of the 5 PyTorch rounds of `npm run bench -- --steps 21 --rounds 5` on 2026-12-03 (2,314-3,230;
 * bench/results/step-20261203-130134.json).
 */
export const RECORDED_PYTORCH = { samplesPerSec: 2613, torch: '1.13.1 (Debian python3-torch, oneDNN)', date: '2026-12-03' } as const;

/** Interpreters tried, in order: DDP_PYTHON, then python3 on the PATH, then Debian's. */
function candidates(): string[] {
  return [...new Set([process.env.DDP_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p))];
}

function run(python: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // One thread, as torch.set_num_threads(1) asks; the BLAS libraries read these at load time.
    const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
    execFile(python, args, { env, timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${python}: ${(stderr || err.message).trim().split('\n').pop()}`));
      else resolve(stdout.trim());
    });
  });
}

export type PytorchProbe = { python: string; version: string } | { python: null; reason: string };

/** The first interpreter that imports torch, with torch's version; or why none does. */
export async function findPytorch(): Promise<PytorchProbe> {
  const reasons: string[] = [];
  for (const python of candidates()) {
    try {
      return { python, version: await run(python, ['-c', 'import torch; print(torch.__version__)'], 60_000) };
    } catch (err) {
      reasons.push((err as Error).message);
    }
  }
  return { python: null, reason: `no python3 with torch (${reasons.join('; ')})` };
}

/** samples/s of `steps` PyTorch seed steps on one thread. */
export async function runPytorchStep(python: string, steps: number, batchSize: number): Promise<number> {
  const out = await run(python, ['-c', PYTORCH_STEP_PROGRAM, String(steps), String(batchSize)], 600_000);
  const v = Number(out.split('\n').pop());
  if (!(v > 0)) throw new Error(`PyTorch step: expected samples/s on the last line, got ${JSON.stringify(out)}`);
  return v;
}
