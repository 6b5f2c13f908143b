import { E4M3_MAX } from "./constants.js";
import { channelScales } from "./quantize.js";

const RNE_MAGIC = 4503599627370496; // 2^52: adding and subtracting it rounds a value in [0, 2^51) to an integer, ties to even
const E4M3_MIN_NORMAL = 2 ** -6;
const E4M3_SUBNORMAL_STEP = 2 ** -9;

/**
 * Rounds to the nearest FP8 e4m3 value (OCP "e4m3fn": 3 significand bits, exponent bias 7, no infinities), ties to
 * even, saturating to ±448 as the CUDA `__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3)` cast does. Exact for
 * every double: the step is a power of two, so x/step is exact and only the integer rounding rounds. NaN stays NaN;
 * −0 stays −0.
 */
export function roundE4m3(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a >= E4M3_MAX) return x < 0 ? -E4M3_MAX : E4M3_MAX;
  let step = E4M3_SUBNORMAL_STEP;
  if (a >= E4M3_MIN_NORMAL) {
    // 2^e ≤ a < 2^(e+1); log2 may be off by one next to a power of two, so check both sides.
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e--;
    else if (2 ** (e + 1) <= a) e++;
    step = 2 ** (e - 3);
  }
  // Below 448 the step is 32 and a/32 < 14, so rounding lands on 448 at most: only the check above saturates.
  const r = (a / step + RNE_MAGIC - RNE_MAGIC) * step;
  return x < 0 || Object.is(x, -0) ? -r : r;
}

/** The value an e4m3 bit pattern (0..255) encodes; NaN for S.1111.111 (the format's only non-finite code). */
export function e4m3FromBits(bits: number): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exp = (bits >> 3) & 0xf;
  const man = bits & 0x7;
  if (exp === 0xf && man === 0x7) return NaN;
  return sign * (exp === 0 ? man * E4M3_SUBNORMAL_STEP : (1 + man / 8) * 2 ** (exp - 7));
}

/** V of one (sequence, kv head) in e4m3: `values[j·D + d]` = e4m3(v[j][d] / scales[d]), one f32 scale per channel. */
export interface E4m3Channels {
  readonly values: Float64Array;
  readonly scales: Float32Array;
}

/**
 * Quantizes rows [row0, row0+rows) of a contiguous [*, D] f32 array per channel to e4m3 (stage v-conversion of fp8
 * P·V): the scales of `channelScales` with top 448, value = e4m3(v / scale in f32).
 */
export function quantizeChannelsE4m3(src: Float32Array, row0: number, rows: number, D: number): E4m3Channels {
  const fr = Math.fround;
  const scales = channelScales(src, row0, rows, D, E4M3_MAX);
  const values = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const base = (row0 + r) * D;
    for (let d = 0; d < D; d++) values[r * D + d] = roundE4m3(fr(src[base + d] / scales[d]));
  }
  return { values, scales };
}
