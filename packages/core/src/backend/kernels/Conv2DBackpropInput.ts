import { backend_util, Conv2DBackpropInput } from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { checkConvBackpropAttrs, checkFloat32, checkRank4, checkShapeEquals } from './kernel-attrs.js';
import { disposeTemps, f32Index, heapF32, makeF32, makeZerosF32, runWasmKernel, type WasmBackend } from './wasm-backend.js';

const KERNEL = 'Conv2DBackpropInput';

/**
 * dx of a conv2d, as one XNNPACK convolution (the wasm Conv2D kernel): the "full" convolution of dy,
 * zero-padded by (k - 1 - pad) on each side, with the filter flipped in space and its in/out channels
 * swapped. For stride s > 1, dy is first spread out with s - 1 zeros between samples; that wastes
 * (1 - 1/s²) of the multiply-adds but stays on XNNPACK, far ahead of the stock scalar loop.
 */
export function conv2DBackpropInput(args: { inputs: { dy?: TensorInfo; filter?: TensorInfo }; backend: WasmBackend; attrs: NamedAttrMap }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs;
  checkFloat32(KERNEL, { dy, filter });
  const { pad, strides } = checkConvBackpropAttrs(KERNEL, attrs);
  const inputShape = attrs.inputShape as number[];
  checkRank4(KERNEL, 'inputShape', inputShape);
  checkRank4(KERNEL, 'filter', filter!.shape);
  const info = backend_util.computeConv2DInfo(inputShape as [number, number, number, number], filter!.shape as [number, number, number, number], strides, 1, pad);
  checkShapeEquals(KERNEL, 'dy', dy!.shape, info.outShape);
  checkShapeEquals(KERNEL, 'filter in-channels', [filter!.shape[2]], [info.inChannels]);

  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;

  // Flipped filter [kh, kw, co, ci]: f'[y, x, o, i] = f[kh-1-y, kw-1-x, i, o].
  const flipped = makeF32(backend, [kh, kw, co, ci]);
  let spread: TensorInfo | null = null;
  {
    const heap = heapF32(backend);
    const src = f32Index(backend, filter!);
    const dst = f32Index(backend, flipped);
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        const srcTap = src + ((kh - 1 - y) * kw + (kw - 1 - x)) * ci * co;
        const dstTap = dst + (y * kw + x) * co * ci;
        for (let i = 0; i < ci; i++) {
          for (let o = 0; o < co; o++) heap[dstTap + o * ci + i] = heap[srcTap + i * co + o];
        }
      }
    }
  }
  // dy with zeros between samples when strided: [n, (oh-1)*sh+1, (ow-1)*sw+1, co].
  const spreadH = (oh - 1) * sh + 1;
  const spreadW = (ow - 1) * sw + 1;
  if (sh > 1 || sw > 1) {
    spread = makeZerosF32(backend, [n, spreadH, spreadW, co]);
    const heap = heapF32(backend);
    const src = f32Index(backend, dy!);
    const dst = f32Index(backend, spread);
    for (let b = 0; b < n; b++) {
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
          const s = src + ((b * oh + y) * ow + x) * co;
          heap.copyWithin(dst + ((b * spreadH + y * sh) * spreadW + x * sw) * co, s, s + co);
        }
      }
    }
  }
  // Padding so that the stride-1 valid correlation of the padded input yields exactly h x w.
  const padTop = kh - 1 - info.padInfo.top;
  const padLeft = kw - 1 - info.padInfo.left;
  const padBottom = h + kh - 1 - spreadH - padTop;
  const padRight = w + kw - 1 - spreadW - padLeft;
  const dx = runWasmKernel('Conv2D', backend, { x: spread ?? dy!, filter: flipped }, {
    strides: [1, 1],
    dilations: [1, 1],
    pad: [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]],
    dataFormat: 'NHWC',
  });
  disposeTemps(backend, flipped);
  if (spread) disposeTemps(backend, spread);
  return dx;
}

export const conv2DBackpropInputConfig: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput as unknown as KernelConfig['kernelFunc'],
};
