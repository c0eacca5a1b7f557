// ddp predict end to end: a tiny model trained by the CLI, MNIST test images written as PNGs and as
// an IDX file, predictions checked against the forward pass computed here with core (wasm backend).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatherImages, initBackend, loadDataset, loadSeedCnnParams, paramTensors, seedCnnLogits, writeIdxFile } from '@ddp/core';
import { runCli, type CliRun } from './cli-helpers.js';

const N = 8;
const SIDE = 28;
const PIXELS = SIDE * SIDE;

interface Top {
  class: number;
  probability: number;
}

/** A width x height PNG whose gray values (RGB equal, opaque) are `gray`. */
function grayPng(gray: Uint8Array, width = SIDE, height = SIDE): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set([gray[i], gray[i], gray[i], 255], 4 * i);
  return PNG.sync.write(png);
}

function predictEvents(run: CliRun): Array<{ input: string; index: number; format: string; top: Top[] }> {
  expect(run.code, run.stderr).toBe(0);
  // runCli's json mode already insists that every stdout line is JSON; here, that every one is a predict event.
  for (const e of run.events) expect(e.event).toBe('predict');
  return run.events as never;
}

describe('ddp predict', () => {
  let dir: string;
  let modelDir: string;
  let pngs: string[];
  let idxFile: string;
  let test: ReturnType<typeof loadDataset>['test'];
  /** The arg-max class of each image, computed in this process by core's seed CNN on the wasm backend. */
  const expected: number[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-predict-'));
    modelDir = path.join(dir, 'model');
    const train = await runCli(
      ['train', '--workers', '0', '--max-steps', '30', '--limit-train', '2000', '--limit-test', '100', '--out', modelDir, '--log-format', 'json'],
      { json: true },
    );
    expect(train.code, train.stderr).toBe(0);

    test = loadDataset({ limitTrain: 1, limitTest: N }).test;
    pngs = [];
    for (let i = 0; i < N; i++) {
      const file = path.join(dir, `digit-${i}.png`);
      fs.writeFileSync(file, grayPng(test.images.subarray(i * PIXELS, (i + 1) * PIXELS)));
      pngs.push(file);
    }
    idxFile = path.join(dir, 'images-idx3-ubyte');
    writeIdxFile(idxFile, [N, SIDE, SIDE], test.images.subarray(0, N * PIXELS));

    await initBackend('wasm');
    const params = await loadSeedCnnParams(modelDir);
    const values = tf.tidy(() => {
      const x = tf.tensor4d(gatherImages(test, Array.from({ length: N }, (_, i) => i)), [N, SIDE, SIDE, 1]);
      return seedCnnLogits(paramTensors(params), x).dataSync();
    });
    for (let i = 0; i < N; i++) {
      const row = Array.from(values.subarray(i * 10, (i + 1) * 10));
      expected.push(row.indexOf(Math.max(...row)));
    }
  }, 240_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('prints for each PNG and each IDX image sorted probabilities that sum to 1, the same top class as core, and the same answers both ways', async () => {
    const fromPng = predictEvents(
      await runCli(['predict', '--model', modelDir, '--backend', 'wasm', '--top', '10', '--log-format', 'json', ...pngs], { json: true }),
    );
    const fromIdx = predictEvents(
      await runCli(['predict', '--model', modelDir, '--backend', 'wasm', '--top', '10', '--log-format', 'json', idxFile], { json: true }),
    );
    expect(fromPng.map((e) => [e.input, e.index, e.format])).toEqual(pngs.map((f) => [f, 0, 'png']));
    expect(fromIdx.map((e) => [e.input, e.index, e.format])).toEqual(Array.from({ length: N }, (_, i) => [idxFile, i, 'idx']));
    for (const events of [fromPng, fromIdx]) {
      events.forEach((e, i) => {
        expect(e.top).toHaveLength(10);
        const sum = e.top.reduce((a, t) => a + t.probability, 0);
        expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
        for (let k = 1; k < e.top.length; k++) expect(e.top[k - 1].probability).toBeGreaterThanOrEqual(e.top[k].probability);
        expect(new Set(e.top.map((t) => t.class))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
        expect(e.top[0].class, `image ${i}`).toBe(expected[i]);
      });
    }
    fromPng.forEach((e, i) => {
      expect(e.top.map((t) => t.class)).toEqual(fromIdx[i].top.map((t) => t.class));
      e.top.forEach((t, k) => expect(Math.abs(t.probability - fromIdx[i].top[k].probability)).toBeLessThan(1e-6));
    });
    // The trained model is not a coin toss: most of these images get their label.
    const right = expected.filter((c, i) => c === test.labels[i]).length;
    expect(right).toBeGreaterThanOrEqual(N / 2);
  });

  it('prints one text line per image with --top K; --limit takes the first images of a gzipped IDX file; --invert reads black on white', async () => {
    const gz = path.join(dir, 'images-idx3-ubyte.gz');
    writeIdxFile(gz, [N, SIDE, SIDE], test.images.subarray(0, N * PIXELS), { gzip: true });
    const text = await runCli(['predict', '--model', modelDir, '--backend', 'wasm', '--top', '2', '--limit', '3', gz, pngs[0]]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    [0, 1, 2].forEach((i) => expect(lines[i]).toMatch(new RegExp(`^${gz.replace(/[.]/g, '\\.')}\\[${i}\\]: ${expected[i]} \\(\\d+\\.\\d%\\), \\d \\(\\d+\\.\\d%\\)$`)));
    expect(lines[3]).toMatch(new RegExp(`^${pngs[0].replace(/[.]/g, '\\.')}: ${expected[0]} \\(\\d+\\.\\d%\\), \\d \\(\\d+\\.\\d%\\)$`));
    expect(text.stderr).toContain('backend: wasm');

    // A black-on-white PNG with --invert is the white-on-black image.
    const inverted = path.join(dir, 'inverted.png');
    fs.writeFileSync(inverted, grayPng(test.images.subarray(0, PIXELS).map((v) => 255 - v)));
    const [plain] = predictEvents(await runCli(['predict', '--model', modelDir, '--backend', 'wasm', '--log-format', 'json', pngs[0]], { json: true }));
    const [inv] = predictEvents(await runCli(['predict', '--model', modelDir, '--backend', 'wasm', '--log-format', 'json', '--invert', inverted], { json: true }));
    expect(inv.top).toEqual(plain.top);
  });

  it('refuses a missing file, a 27x28 PNG, a corrupt PNG or IDX file and a missing model with one line naming it and exit code 2', async () => {
    const missing = path.join(dir, 'nope.png');
    const narrow = path.join(dir, 'narrow.png');
    fs.writeFileSync(narrow, grayPng(new Uint8Array(27 * 28), 27, 28));
    const corrupt = path.join(dir, 'corrupt.png');
    fs.writeFileSync(corrupt, fs.readFileSync(pngs[0]).subarray(0, 60));
    const flipped = path.join(dir, 'flipped.png');
    const bytes = Buffer.from(fs.readFileSync(pngs[0]));
    bytes[bytes.length - 20] ^= 0xff; // inside the last IDAT chunk: its CRC no longer matches
    fs.writeFileSync(flipped, bytes);
    const garbage = path.join(dir, 'garbage.png');
    fs.writeFileSync(garbage, 'not an image at all');
    const cutIdx = path.join(dir, 'cut-idx3-ubyte');
    fs.writeFileSync(cutIdx, fs.readFileSync(idxFile).subarray(0, 1000));
    const cases: Array<[string[], string, RegExp]> = [
      [['--model', modelDir, missing], missing, /no such file/],
      [['--model', modelDir, narrow], narrow, /27x28/],
      [['--model', modelDir, corrupt], corrupt, /not a valid PNG \(truncated/],
      [['--model', modelDir, flipped], flipped, /not a valid PNG/],
      [['--model', modelDir, garbage], garbage, /not a valid PNG \(no PNG signature/],
      [['--model', modelDir, cutIdx], cutIdx, /truncated/],
      [['--model', path.join(dir, 'no-model'), pngs[0]], path.join(dir, 'no-model'), /model\.json/],
    ];
    for (const [args, named, why] of cases) {
      const r = await runCli(['predict', '--backend', 'wasm', ...args]);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^ddp: /);
      expect(lines[0]).toContain(named);
      expect(lines[0]).toMatch(why);
    }
    // --resize accepts the 27x28 image.
    const resized = await runCli(['predict', '--model', modelDir, '--backend', 'wasm', '--resize', '--log-format', 'json', narrow], { json: true });
    expect(predictEvents(resized)).toHaveLength(1);
  });
});
