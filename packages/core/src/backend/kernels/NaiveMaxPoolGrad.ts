import { backend_util, MaxPoolGrad } from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { checkFloat32, checkPadding, checkRank4, checkShapeEquals, checkStrides } from './kernel-attrs.js';
import { f32Index, heapF32, makeF32, sizeOf, wasmKernelConfig, type WasmBackend } from './wasm-backend.js';

const KERNEL = 'MaxPoolGrad';

/**
 * The baseline MaxPoolGrad of the 'naive' kernel set: the tfjs cpu backend's algorithm run over the
 * wasm heap (first a table of each window's first-maximum position, then, for every input
 * position, a gather over the windows that contain it). The stock wasm kernel cannot be the
 * baseline because it is wrong: for a window whose maximum is <= 0 (all-negative windows, all-zero
 * windows after a ReLU) its gradient lands on the wrong element (relative error ~1 against cpu).
 */
export function naiveMaxPoolGrad(args: { inputs: { dy?: TensorInfo; input?: TensorInfo }; backend: WasmBackend; attrs: NamedAttrMap }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs;
  checkFloat32(KERNEL, { dy, input });
  checkRank4(KERNEL, 'input', input!.shape);
  const pad = checkPadding(KERNEL, attrs.pad);
  const strides = checkStrides(KERNEL, attrs.strides, (s) => s >= 1, 'positive integers');
  const info = backend_util.computePool2DInfo(input!.shape as [number, number, number, number], attrs.filterSize as [number, number] | number, strides, 1, pad);
  checkShapeEquals(KERNEL, 'dy', dy!.shape, info.outShape);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;

  const dx = makeF32(backend, input!.shape);
  const heap = heapF32(backend);
  const xBase = f32Index(backend, input!);
  const xAt = (b: number, y: number, x: number, d: number) => heap[xBase + ((b * h + y) * w + x) * c + d];
  // Pass 1: each window's first maximum, as a position inside the window (-1: none).
  const maxPos = new Int32Array(sizeOf(info.outShape));
  for (let b = 0; b < n; b++) {
    for (let d = 0; d < c; d++) {
      for (let py = 0; py < oh; py++) {
        const rowCorner = py * sh - padTop;
        for (let px = 0; px < ow; px++) {
          const colCorner = px * sw - padLeft;
          let best = Number.NEGATIVE_INFINITY;
          let pos = -1;
          for (let y = Math.max(0, rowCorner); y < Math.min(h, rowCorner + fh); y++) {
            for (let x = Math.max(0, colCorner); x < Math.min(w, colCorner + fw); x++) {
              const v = xAt(b, y, x, d);
              if (v > best) {
                best = v;
                pos = (y - rowCorner) * fw + (x - colCorner);
              }
            }
          }
          maxPos[((b * oh + py) * ow + px) * c + d] = pos;
        }
      }
    }
  }
  // Pass 2: every input position gathers dy from the windows whose maximum it is.
  const dyBase = f32Index(backend, dy!);
  const dxBase = f32Index(backend, dx);
  for (let b = 0; b < n; b++) {
    for (let d = 0; d < c; d++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let g = 0;
          // The windows containing (y, x): window row py starts at py*sh - padTop <= y.
          for (let wy = 0; wy < fh; wy++) {
            const py = (y + padTop - wy) / sh;
            if (py < 0 || py >= oh || Math.floor(py) !== py) continue;
            for (let wx = 0; wx < fw; wx++) {
              const px = (x + padLeft - wx) / sw;
              if (px < 0 || px >= ow || Math.floor(px) !== px) continue;
              const at = ((b * oh + py) * ow + px) * c + d;
              if (maxPos[at] === wy * fw + wx) g += heap[dyBase + at];
            }
          }
          heap[dxBase + ((b * h + y) * w + x) * c + d] = g;
        }
      }
    }
  }
  return dx;
}

export const naiveMaxPoolGradConfig = wasmKernelConfig(MaxPoolGrad, naiveMaxPoolGrad);
