import { INT8_MAX, LOG2E } from "./constants.js";

const fr = Math.fround;

/** Rounds half away from zero (the paper's rounding; Math.round rounds −2.5 to −2). */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/** INT8 values for `rows` tokens of width D, and one f32 scale per block of tokens. */
export interface QuantizedRows {
  readonly values: Int8Array;
  readonly scales: Float32Array;
  readonly blockSize: number;
}

/**
 * Quantizes rows [row0, row0+rows) of a contiguous [*, D] f32 array in blocks of `blockSize` tokens:
 * x = src·fold (in f32), scale = max|x|/127 (1 when the block is all zeros), value = round(x/scale).
 * `shift` (length D), when given, is subtracted first (K smoothing).
 */
export function quantizeRows(
  src: Float32Array,
  row0: number,
  rows: number,
  D: number,
  blockSize: number,
  fold = 1,
  shift?: Float32Array,
): QuantizedRows {
  const blocks = Math.ceil(rows / blockSize);
  return { ...quantizeGrouped(src, row0, rows, D, (r) => Math.floor(r / blockSize), blocks, fold, shift), blockSize };
}

/**
 * Quantizes rows [row0, row0+rows) of a contiguous [*, D] f32 array, each row's scale shared by the rows of its group
 * `groupOf(r)` (0 ≤ group < `groups`, rows counted from row0; a group's rows need not be adjacent):
 * x = src·fold (in f32), scale = max|x|/127 over the group (1 when it is all zeros or has no rows),
 * value = round(x/scale). `shift` (length D), when given, is subtracted first (K smoothing). `blockSize` of the result
 * is 0: index the scales by `groupOf`.
 */
export function quantizeGrouped(
  src: Float32Array,
  row0: number,
  rows: number,
  D: number,
  groupOf: (r: number) => number,
  groups: number,
  fold = 1,
  shift?: Float32Array,
): QuantizedRows {
  const f = fr(fold);
  const x = new Float32Array(rows * D);
  const amax = new Float32Array(groups);
  for (let r = 0; r < rows; r++) {
    const base = (row0 + r) * D;
    const g = groupOf(r);
    let m = amax[g];
    for (let d = 0; d < D; d++) {
      const v = fr((shift ? fr(src[base + d] - shift[d]) : src[base + d]) * f);
      x[r * D + d] = v;
      const a = Math.abs(v);
      if (a > m || a !== a) m = a; // a NaN sticks
    }
    amax[g] = m;
  }
  // A NaN/±inf in the group (inputs not validated) makes the scale NaN: the group's values mean nothing, and the NaN
  // must reach every logit that uses them rather than quantize to 0.
  const scales = amax.map((m) => (!Number.isFinite(m) ? NaN : m === 0 ? 1 : fr(m / INT8_MAX)));
  const values = new Int8Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const scale = scales[groupOf(r)];
    for (let d = 0; d < D; d++) {
      const q = roundHalfAway(fr(x[r * D + d] / scale));
      values[r * D + d] = q > INT8_MAX ? INT8_MAX : q < -INT8_MAX ? -INT8_MAX : q;
    }
  }
  return { values, scales, blockSize: 0 };
}

/** V of one (sequence, kv head) as INT8: `values[j·D + d]` = round(v[j][d] / scales[d]), one f32 scale per channel. */
export interface Int8Channels {
  readonly values: Int8Array;
  readonly scales: Float32Array;
}

/**
 * One f32 scale per channel of rows [row0, row0+rows) of a contiguous [*, D] f32 array: max|v| over the rows / `top`
 * (1 for an all-zero channel; NaN for a channel holding NaN/±inf, so that the whole channel comes out NaN — unvalidated
 * inputs only). The V scales of the 8-bit P·V modes (int8 here, fp8 in fp8.ts): one scale per channel over every key
 * factors out of Σ_j P·V, so the output is unscaled once at the end.
 */
export function channelScales(src: Float32Array, row0: number, rows: number, D: number, top: number): Float32Array {
  const scales = new Float32Array(D);
  const amax = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    const base = (row0 + r) * D;
    for (let d = 0; d < D; d++) {
      const a = Math.abs(src[base + d]);
      if (a > amax[d] || a !== a) amax[d] = a; // a NaN sticks
    }
  }
  for (let d = 0; d < D; d++) scales[d] = !Number.isFinite(amax[d]) ? NaN : amax[d] === 0 ? 1 : fr(amax[d] / top);
  return scales;
}

/**
 * Quantizes rows [row0, row0+rows) of a contiguous [*, D] f32 array per channel to INT8 (stage v-conversion of int8
 * P·V): the scales of `channelScales` with top 127, value = round(v / scale in f32) half away from zero, clamped to
 * ±127. No mean is subtracted.
 */
export function quantizeChannelsInt8(src: Float32Array, row0: number, rows: number, D: number): Int8Channels {
  const scales = channelScales(src, row0, rows, D, INT8_MAX);
  const values = new Int8Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const base = (row0 + r) * D;
    for (let d = 0; d < D; d++) {
      const q = roundHalfAway(fr(src[base + d] / scales[d]));
      values[r * D + d] = q > INT8_MAX ? INT8_MAX : q < -INT8_MAX ? -INT8_MAX : q;
    }
  }
  return { values, scales };
}

/** Mean over rows [row0, row0+rows) of a contiguous [*, D] f32 array, per channel (f64 sum, f32 result). */
export function channelMean(src: Float32Array, row0: number, rows: number, D: number): Float32Array {
  const sum = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    const base = (row0 + r) * D;
    for (let d = 0; d < D; d++) sum[d] += src[base + d];
  }
  const out = new Float32Array(D);
  if (rows > 0) { for (let d = 0; d < D; d++) out[d] = sum[d] / rows; }
  return out;
}

/** The factor folded into Q before quantization: logits come out in base-2 units. */
export const qFold = (smScale: number) => fr(smScale * LOG2E);
