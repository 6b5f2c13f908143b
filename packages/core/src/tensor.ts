import { decode16, type DType, encode16 } from "./dtype.js";
import { invalid } from "./errors.js";

/** "HND" is [B, H, N, D]; "NHD" is [B, N, H, D]. Shapes and strides are given in the layout's own order. */
export type Layout = "HND" | "NHD";

export type Shape4 = readonly [number, number, number, number];

/** Host storage: f32 values, or f16/bf16 bit patterns in a Uint16Array. */
export type HostData = Float32Array | Uint16Array;

/** A tensor whose elements live in JavaScript memory. */
export interface HostTensor {
  readonly kind: "host";
  readonly data: HostData;
  readonly dtype: DType;
  readonly layout: Layout;
  readonly shape: Shape4;
  /** Element strides in the layout's order. */
  readonly strides: Shape4;
}

/** A tensor that stays on a backend's device between calls; `handle` is the backend's own. */
export interface DeviceTensor {
  readonly kind: "device";
  readonly backend: string;
  readonly dtype: DType;
  readonly layout: Layout;
  readonly shape: Shape4;
  readonly strides: Shape4;
  readonly handle: unknown;
  /** Frees the device memory now; safe to call twice. */
  dispose(): void;
}

export type Tensor = HostTensor | DeviceTensor;

/** The logical sizes of a tensor whatever its layout. */
export interface Dims {
  readonly B: number;
  readonly H: number;
  readonly N: number;
  readonly D: number;
}

export function contiguousStrides(shape: Shape4): Shape4 {
  return [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1];
}

export function dims(t: { layout: Layout; shape: Shape4 }): Dims {
  const [a, b, c, d] = t.shape;
  return t.layout === "HND" ? { B: a, H: b, N: c, D: d } : { B: a, H: c, N: b, D: d };
}

/** Strides as (b, h, n, d) whatever the layout. */
export function logicalStrides(t: { layout: Layout; strides: Shape4 }): Shape4 {
  const [a, b, c, d] = t.strides;
  return t.layout === "HND" ? [a, b, c, d] : [a, c, b, d];
}

/** The shape in `layout`'s order for logical sizes. */
export function shapeFor(layout: Layout, d: Dims): Shape4 {
  return layout === "HND" ? [d.B, d.H, d.N, d.D] : [d.B, d.N, d.H, d.D];
}

type Float16ArrayLike = {
  readonly length: number;
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  [i: number]: number;
};
const Float16Ctor: (new (n: number) => Float16ArrayLike) | undefined = (globalThis as Record<string, unknown>)
  .Float16Array as never;

function isFloat16Array(x: unknown): x is Float16ArrayLike {
  return Float16Ctor !== undefined && x instanceof Float16Ctor;
}

export interface HostTensorOptions {
  dtype?: DType;
  layout?: Layout;
  strides?: Shape4;
}

/**
 * Wraps host data as a tensor. A Float16Array (where the runtime has it) is viewed as f16 bits without copying.
 * Throws InvalidInput (InvalidShape) for a shape or strides of rank other than 4: a fifth dimension would otherwise
 * be dropped silently. Sizes, dtype and length are checked by each call.
 * @example hostTensor(new Float32Array(1 * 8 * 128 * 64), [1, 8, 128, 64])
 */
export function hostTensor(
  data: HostData | Float16ArrayLike,
  shape: Shape4,
  options: HostTensorOptions = {},
): HostTensor {
  if (!Array.isArray(shape) || shape.length !== 4) {
    throw invalid(
      "InvalidShape",
      `a tensor has 4 dimensions [B, H, N, D] (or [B, N, H, D]), got shape ${JSON.stringify(shape)}`,
    );
  }
  if (options.strides !== undefined && (!Array.isArray(options.strides) || options.strides.length !== 4)) {
    throw invalid("InvalidShape", `strides need 4 entries, got ${JSON.stringify(options.strides)}`);
  }
  let bits: HostData;
  let dtype = options.dtype;
  if (isFloat16Array(data)) {
    bits = new Uint16Array(data.buffer, data.byteOffset, data.length);
    dtype = dtype ?? "f16";
  } else {
    bits = data as HostData;
    dtype = dtype ?? (bits instanceof Float32Array ? "f32" : "f16");
  }
  return {
    kind: "host",
    data: bits,
    dtype,
    layout: options.layout ?? "HND",
    shape: [shape[0], shape[1], shape[2], shape[3]],
    strides: options.strides
      ? [options.strides[0], options.strides[1], options.strides[2], options.strides[3]]
      : contiguousStrides(shape),
  };
}

/** Elements as f32 in the stored order (decoding f16/bf16). */
export function hostValues(t: HostTensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : decode16(t.data, t.dtype === "bf16" ? "bf16" : "f16");
}

/** A contiguous HND f32 copy of a host tensor, whatever its layout, strides and dtype. */
export function toCanonicalF32(t: HostTensor): Float32Array {
  const { B, H, N, D } = dims(t);
  const [sb, sh, sn, sd] = logicalStrides(t);
  const src = hostValues(t);
  const out = new Float32Array(B * H * N * D);
  let o = 0;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let n = 0; n < N; n++) {
        const base = b * sb + h * sh + n * sn;
        for (let d = 0; d < D; d++) out[o++] = src[base + d * sd];
      }
    }
  }
  return out;
}

/** A contiguous host tensor of `dtype` and `layout` from canonical HND f32 values. */
export function fromCanonicalF32(values: Float32Array, d: Dims, dtype: DType, layout: Layout): HostTensor {
  const shape = shapeFor(layout, d);
  let ordered = values;
  if (layout === "NHD") {
    ordered = new Float32Array(values.length);
    const { B, H, N, D } = d;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let n = 0; n < N; n++) {
          const src = ((b * H + h) * N + n) * D;
          const dst = ((b * N + n) * H + h) * D;
          for (let x = 0; x < D; x++) ordered[dst + x] = values[src + x];
        }
      }
    }
  }
  const data = dtype === "f32" ? ordered : encode16(ordered, dtype);
  return hostTensor(data, shape, { dtype, layout });
}

/** Highest element index a tensor's strides reach, plus one (the storage it needs). */
export function requiredLength(t: { shape: Shape4; strides: Shape4 }): number {
  let last = 0;
  for (let i = 0; i < 4; i++) {
    if (t.shape[i] === 0) return 0;
    last += (t.shape[i] - 1) * t.strides[i];
  }
  return last + 1;
}
