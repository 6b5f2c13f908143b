/**
 * Tiny V, scaled by a power of two around the call. The sage path rounds V to f16 (and "f16-block" sums P·V in f16),
 * whose precision runs out below 2^-14 (subnormals, then zero): a V of 1e-8 came out as zeros. A scanned host V whose
 * largest magnitude is under V_SCALE_BELOW goes to the backend as a copy times 2^shift (its maximum in [1, 2)), and the
 * output comes back times 2^-shift: both exact in f32 and bf16, and in f16 unless the result is itself below f16's
 * normal range, where the output dtype rounds it as it would the exact result.
 */
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "./dtype.js";
import { dims, fromCanonicalF32, type HostTensor, toCanonicalF32 } from "./tensor.js";
import { forEachIndex } from "./strided.js";

export const V_SCALE_BELOW = 2 ** -6;

/** The power of two a V of largest magnitude `maxV` is scaled by (0: none). */
export function vShift(maxV: number): number {
  return maxV > 0 && maxV < V_SCALE_BELOW ? -Math.floor(Math.log2(maxV)) : 0;
}

/** A contiguous copy of `v` (same dtype and layout) times 2^shift. */
export function scaledCopy(v: HostTensor, shift: number): HostTensor {
  const x = toCanonicalF32(v);
  const f = 2 ** shift;
  for (let i = 0; i < x.length; i++) x[i] *= f;
  return fromCanonicalF32(x, dims(v), v.dtype, v.layout);
}

/** Multiplies every element of `t` by 2^-shift in place, through its strides. */
export function unscaleInPlace(t: HostTensor, shift: number): void {
  const f = 2 ** -shift;
  const data = t.data;
  if (data instanceof Float32Array) {
    forEachIndex(t, (i) => ((data[i] *= f), true));
    return;
  }
  const [decode, encode] = t.dtype === "bf16" ? [bf16BitsToF32, f32ToBf16Bits] : [f16BitsToF32, f32ToF16Bits];
  forEachIndex(t, (i) => ((data[i] = encode(decode(data[i]) * f)), true));
}
