/** Element types a tensor may hold on the host. f16 and bf16 travel as their 16-bit patterns in a Uint16Array. */
export type DType = "f32" | "f16" | "bf16";

export const DTYPES: readonly DType[] = ["f32", "f16", "bf16"];

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The f16 bit pattern nearest to `x` (round to nearest, ties to even; overflow to ±inf; NaN stays NaN). */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  return f16FromF32Bits(u32[0]);
}

/** f32ToF16Bits of the f32 whose bit pattern is `bits`. */
function f16FromF32Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  // Re-bias from 127 to 15.
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal f16 (or zero): shift the full significand right, rounding to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let out = mant >>> shift;
    if (rest > half || (rest === half && (out & 1))) out += 1;
    return sign | out;
  }
  const rest = mant & 0x1fff;
  let out = (e << 10) | (mant >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1))) out += 1; // may carry into the exponent, which is right
  return sign | out;
}

/** The number an f16 bit pattern stands for. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The bf16 bit pattern nearest to `x` (round to nearest, ties to even; NaN stays NaN). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  return bf16FromF32Bits(u32[0]);
}

/** f32ToBf16Bits of the f32 whose bit pattern is `bits`. */
function bf16FromF32Bits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** The number a bf16 bit pattern stands for. */
export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** `x` rounded to the nearest f16 value, as a number (what storing it in f16 keeps). */
export function roundF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

/** Largest finite f16 value. */
export const F16_MAX = 65504;

/** Decodes 16-bit patterns of `dtype` into `out` (f32 values). */
export function decode16(
  bits: Uint16Array,
  dtype: "f16" | "bf16",
  out: Float32Array = new Float32Array(bits.length),
): Float32Array {
  if (dtype === "bf16") {
    const o32 = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < bits.length; i++) o32[i] = bits[i] << 16;
  } else {
    for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i]);
  }
  return out;
}

/** Encodes f32 values into 16-bit patterns of `dtype`. */
export function encode16(
  values: ArrayLike<number>,
  dtype: "f16" | "bf16",
  out: Uint16Array = new Uint16Array(values.length),
): Uint16Array {
  if (values instanceof Float32Array) {
    // The bit patterns read in place: no store of each value into a scratch f32 (benchmarks encode billions).
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    const fromBits = dtype === "f16" ? f16FromF32Bits : bf16FromF32Bits;
    for (let i = 0; i < bits.length; i++) out[i] = fromBits(bits[i]);
    return out;
  }
  const enc = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < values.length; i++) out[i] = enc(values[i]);
  return out;
}
