/**
 * Tiny V, scaled by a power of two around the call. The sage path rounds V to f16 (and "f16-block" sums P·V in f16),
 * whose precision runs out below 2^-14 (subnormals, then zero): a V of 1e-8 came out as zeros. A scanned host V whose
 * largest magnitude is under V_SCALE_BELOW goes to the backend as a copy times 2^shift (its maximum in [1, 2)), and the
 * output comes back times 2^-shift: both exact in f32 and bf16, and in f16 unless the result is itself below f16's
 * normal range, where the output dtype rounds it as it would the exact result.
 */
import { decode16, encode16 } from "./dtype.js";
import { dims, fromCanonicalF32, type HostTensor, toCanonicalF32 } from "./tensor.js";

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
  const [n0, n1, n2, n3] = t.shape, [s0, s1, s2, s3] = t.strides;
  const row = new Float32Array(n3), bits = new Uint16Array(n3);
  const dtype = t.dtype === "bf16" ? "bf16" : "f16";
  for (let a = 0; a < n0; a++) {
    for (let b = 0; b < n1; b++) {
      for (let c = 0; c < n2; c++) {
        const base = a * s0 + b * s1 + c * s2;
        if (t.data instanceof Float32Array) {
          for (let e = 0; e < n3; e++) t.data[base + e * s3] *= f;
          continue;
        }
        for (let e = 0; e < n3; e++) bits[e] = t.data[base + e * s3];
        decode16(bits, dtype, row);
        for (let e = 0; e < n3; e++) row[e] *= f;
        encode16(row, dtype, bits);
        for (let e = 0; e < n3; e++) t.data[base + e * s3] = bits[e];
      }
    }
  }
}
