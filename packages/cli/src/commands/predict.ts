import { IMAGE_SIZE, ModelFileError, NUM_CLASSES, Reporter, initBackend, loadSeedCnnParams, predictProbabilities, scalePixels, topClasses } from '@ddp/core';
import { formatFlags, num, numOf, parseFlags, str, UsageError, type FlagSpec } from '../args.js';
import { BACKEND_FLAG, LOG_FORMAT_FLAG, backendFrom, logFormatFrom } from '../training-flags.js';
import { readInputImages, type InputImage } from '../predict/input-images.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'model', type: 'string', metavar: 'DIR', help: 'folder with model.json + weights.bin (as written by ddp train --out)' },
  { name: 'top', type: 'int', min: 1, max: NUM_CLASSES, default: 3, metavar: 'K', help: 'how many of the most probable classes to print per image' },
  { name: 'limit', type: 'int', min: 1, help: 'predict only the first N images of each IDX file' },
  { name: 'invert', type: 'bool', help: 'the images are dark on a light background: use 255 - v (MNIST is white on black)' },
  { name: 'resize', type: 'bool', help: 'stretch images that are not 28x28 to 28x28 by area averaging instead of refusing them' },
  BACKEND_FLAG,
  LOG_FORMAT_FLAG,
];

export const PREDICT_HELP = `Usage: ddp predict --model DIR [flags] IMAGE...

Prints the most probable classes, with their probabilities, of each input image, using a seed CNN
saved by ddp train --out. An IMAGE is a PNG file or an IDX images file (plain or .gz, as in MNIST),
whose every image is predicted (--limit N: the first N). The images get the same preprocessing as in
training: 28x28x1, pixels / 255.

PNG images:
  - any colour type and bit depth; colour becomes gray by luminance 0.299 R + 0.587 G + 0.114 B
  - MNIST digits are white on a black background; pass --invert for dark digits on a light
    background (each gray value v becomes 255 - v)
  - transparent pixels count as background: composited onto black, or onto white with --invert,
    so they end up as 0 either way
  - an image that is not 28x28 is refused unless --resize is given; --resize stretches it to
    28x28 by area averaging, without keeping the aspect ratio or centring the digit (MNIST digits
    sit centred in a 20x20 box inside the 28x28 image: crop yours with a margin for best results)
  - gray values are rounded to 0..255, so a PNG of an IDX image predicts exactly like it
--invert and --resize apply to IDX images too.

Output: one line per image, "FILE: 7 (99.2%), 2 (0.5%), 1 (0.1%)" (FILE[i] for image i of an IDX
file); the backend line goes to stderr. With --log-format json, one event per image on stdout:
{"event":"predict","input","index","format","top":[{"class","probability"}]}.

Flags:
${formatFlags(FLAGS)}`;

export async function runPredictCommand(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, FLAGS);
  if (parsed.help) {
    console.log(PREDICT_HELP);
    return 0;
  }
  const values = parsed.values;
  const modelDir = str(values, 'model');
  if (!modelDir) throw new UsageError('--model DIR is required (a folder with model.json and weights.bin)');
  if (parsed.positionals.length === 0) throw new UsageError('no images given: ddp predict --model DIR IMAGE... (PNG files or IDX images files)');
  const opts = { invert: values.invert === true, resize: values.resize === true, limit: num(values, 'limit') };
  const top = numOf(values, 'top');
  const reporter = new Reporter(logFormatFrom(values));

  // Every input is read and checked before the backend starts: a bad file fails fast, with one line.
  const images: InputImage[] = parsed.positionals.flatMap((file) => readInputImages(file, opts));

  const backend = await initBackend(backendFrom(values));
  let params: Float32Array;
  try {
    params = await loadSeedCnnParams(modelDir);
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    // tfjs's own complaint (a weights.bin of the wrong size, another architecture): the user's file to fix.
    throw new ModelFileError(`${modelDir}: cannot load the model (${err instanceof Error ? err.message : String(err)})`);
  }
  process.stderr.write(`backend: ${backend.name} (${backend.reason})\n`);

  const pixels = IMAGE_SIZE * IMAGE_SIZE;
  const all = new Uint8Array(images.length * pixels);
  images.forEach((im, i) => all.set(im.pixels, i * pixels));
  const probs = predictProbabilities(params, scalePixels(all), images.length, (d, t) => reporter.progress(d, t, 'predicting'));
  reporter.endProgress();
  images.forEach((im, i) => {
    reporter.event({
      event: 'predict',
      input: im.input,
      index: im.index,
      format: im.format,
      top: topClasses(probs.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES), top),
    });
  });
  return 0;
}
