import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { pngToMnist, resizeArea } from './input-images.js';

function rgbaPng(width: number, height: number, pixel: (i: number) => [number, number, number, number]): Uint8Array {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set(pixel(i), 4 * i);
  return PNG.sync.write(png);
}

describe('resizeArea', () => {
  it('keeps a constant image constant, averages 2x2 blocks when halving, and repeats pixels when doubling', () => {
    const flat = resizeArea(new Float64Array(30 * 17).fill(100), 30, 17, 28, 28);
    for (const v of flat) expect(v).toBeCloseTo(100, 10);
    const src = Float64Array.from({ length: 4 * 4 }, (_, i) => i);
    expect(Array.from(resizeArea(src, 4, 4, 2, 2))).toEqual([(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4, (8 + 9 + 12 + 13) / 4, (10 + 11 + 14 + 15) / 4]);
    expect(Array.from(resizeArea(Float64Array.from([1, 2]), 2, 1, 4, 1))).toEqual([1, 1, 2, 2]);
  });
});

describe('pngToMnist', () => {
  const opts = { invert: false, resize: false };
  it('takes luminance, composites transparency onto the background, and inverts with --invert', () => {
    const colours: Array<[number, number, number, number]> = [[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255], [200, 200, 200, 0], [200, 200, 200, 128], [37, 37, 37, 255]];
    const bytes = rgbaPng(28, 28, (i) => colours[i % colours.length]);
    const plain = pngToMnist(bytes, 'x.png', opts);
    expect(Array.from(plain.subarray(0, 6))).toEqual([76, 150, 29, 0, Math.round((200 * 128) / 255), 37]);
    const inv = pngToMnist(bytes, 'x.png', { invert: true, resize: false });
    // Transparent pixels are white paper under --invert, so background (0) after it.
    expect(Array.from(inv.subarray(0, 6))).toEqual([255 - 76, 255 - 150, 255 - 29, 0, 255 - Math.round((200 * 128 + 255 * 127) / 255), 255 - 37]);
  });

  it('refuses another size unless resize is set, naming the file and the size', () => {
    const bytes = rgbaPng(27, 28, () => [9, 9, 9, 255]);
    expect(() => pngToMnist(bytes, 'small.png', opts)).toThrow(/^small\.png: image is 27x28 .*--resize/);
    expect(Array.from(new Set(pngToMnist(bytes, 'small.png', { invert: false, resize: true })))).toEqual([9]);
  });
});
