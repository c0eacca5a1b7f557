import { backend_util, Conv2DBackpropFilter, Conv2DBackpropInput } from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

/**
 * Attribute checks shared by ddp's wasm training kernels. They support what Keras conv and pool
 * layers produce (NHWC, 'valid'/'same' padding, dilation 1, conv strides 1 or 2); anything else is
 * an Error that names the kernel, the attribute, what arrived and what is supported, because a
 * kernel that guessed would return a silently wrong gradient.
 */
export class UnsupportedAttributeError extends Error {
  constructor(kernel: string, attribute: string, got: unknown, supported: string) {
    super(`ddp wasm kernel ${kernel}: unsupported ${attribute} ${JSON.stringify(got)}; supported: ${supported}`);
    this.name = 'UnsupportedAttributeError';
  }
}

export type Padding = 'valid' | 'same';

export function checkPadding(kernel: string, pad: unknown): Padding {
  if (pad === 'valid' || pad === 'same') return pad;
  throw new UnsupportedAttributeError(kernel, 'pad', pad, "'valid' or 'same'");
}

/** Strides as [height, width], each from `allowed`. */
export function checkStrides(kernel: string, strides: unknown, allowed: (s: number) => boolean, supported: string): [number, number] {
  const pair = typeof strides === 'number' ? [strides, strides] : strides;
  if (Array.isArray(pair) && pair.length === 2 && pair.every((s) => Number.isInteger(s) && allowed(s as number))) {
    return [pair[0] as number, pair[1] as number];
  }
  throw new UnsupportedAttributeError(kernel, 'strides', strides, supported);
}

export function checkConvStrides(kernel: string, strides: unknown): [number, number] {
  return checkStrides(kernel, strides, (s) => s === 1 || s === 2, '1 or 2 (a number or [h, w])');
}

export function checkDataFormat(kernel: string, dataFormat: unknown): void {
  if (dataFormat === undefined || dataFormat === 'NHWC' || dataFormat === 'channelsLast') return;
  throw new UnsupportedAttributeError(kernel, 'dataFormat', dataFormat, "'NHWC' (channelsLast)");
}

export function checkDilations(kernel: string, dilations: unknown): void {
  if (dilations === undefined || dilations === 1) return;
  if (Array.isArray(dilations) && dilations.length === 2 && dilations[0] === 1 && dilations[1] === 1) return;
  throw new UnsupportedAttributeError(kernel, 'dilations', dilations, '1');
}

/** Checks the attributes of Conv2DBackpropInput / Conv2DBackpropFilter. */
function checkConvBackpropAttrs(kernel: string, attrs: NamedAttrMap): { pad: Padding; strides: [number, number] } {
  checkDataFormat(kernel, attrs.dataFormat);
  checkDilations(kernel, attrs.dilations);
  return { pad: checkPadding(kernel, attrs.pad), strides: checkConvStrides(kernel, attrs.strides) };
}

export function checkFloat32(kernel: string, inputs: Record<string, TensorInfo | undefined>): void {
  for (const [name, t] of Object.entries(inputs)) {
    if (t === undefined) throw new Error(`ddp wasm kernel ${kernel}: missing input '${name}'`);
    if (t.dtype !== 'float32') throw new UnsupportedAttributeError(kernel, `dtype of input '${name}'`, t.dtype, "'float32'");
  }
}

export function checkRank4(kernel: string, name: string, shape: readonly number[]): void {
  if (shape.length !== 4) throw new Error(`ddp wasm kernel ${kernel}: ${name} must be rank 4 (NHWC), got shape [${shape}]`);
}

export function checkShapeEquals(kernel: string, name: string, got: readonly number[], expected: readonly number[]): void {
  if (got.length !== expected.length || got.some((d, i) => d !== expected[i])) {
    throw new Error(`ddp wasm kernel ${kernel}: ${name} has shape [${got}], expected [${expected}]`);
  }
}

type Shape4 = [number, number, number, number];

/**
 * Checks the inputs and attributes of a Conv2DBackpropFilter kernel (ddp's and the naive baseline)
 * and returns them with the convolution they describe.
 */
export function checkConv2DBackpropFilterArgs(inputs: { x?: TensorInfo; dy?: TensorInfo }, attrs: NamedAttrMap): { x: TensorInfo; dy: TensorInfo; info: backend_util.Conv2DInfo } {
  const kernel = Conv2DBackpropFilter;
  const { x, dy } = inputs;
  checkFloat32(kernel, { x, dy });
  const { pad, strides } = checkConvBackpropAttrs(kernel, attrs);
  const filterShape = attrs.filterShape as number[];
  checkRank4(kernel, 'x', x!.shape);
  checkRank4(kernel, 'filterShape', filterShape);
  const info = backend_util.computeConv2DInfo(x!.shape as Shape4, filterShape as Shape4, strides, 1, pad);
  checkShapeEquals(kernel, 'dy', dy!.shape, info.outShape);
  checkShapeEquals(kernel, 'filterShape in-channels', [filterShape[2]], [info.inChannels]);
  return { x: x!, dy: dy!, info };
}

/** Checks the inputs and attributes of a Conv2DBackpropInput kernel and returns them with the convolution they describe. */
export function checkConv2DBackpropInputArgs(inputs: { dy?: TensorInfo; filter?: TensorInfo }, attrs: NamedAttrMap): { dy: TensorInfo; filter: TensorInfo; info: backend_util.Conv2DInfo } {
  const kernel = Conv2DBackpropInput;
  const { dy, filter } = inputs;
  checkFloat32(kernel, { dy, filter });
  const { pad, strides } = checkConvBackpropAttrs(kernel, attrs);
  const inputShape = attrs.inputShape as number[];
  checkRank4(kernel, 'inputShape', inputShape);
  checkRank4(kernel, 'filter', filter!.shape);
  const info = backend_util.computeConv2DInfo(inputShape as Shape4, filter!.shape as Shape4, strides, 1, pad);
  checkShapeEquals(kernel, 'dy', dy!.shape, info.outShape);
  checkShapeEquals(kernel, 'filter in-channels', [filter!.shape[2]], [info.inChannels]);
  return { dy: dy!, filter: filter!, info };
}
