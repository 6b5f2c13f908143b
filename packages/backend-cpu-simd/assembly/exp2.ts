// exp2 on four lanes for x ≤ 0: x = k + f with k = nearest(x) (by adding 1.5·2^23, which also leaves k in the
// low mantissa bits) and f ∈ [−0.5, 0.5]; 2^f by a polynomial, 2^k by building the exponent field.
// The int8 kernel's degree-3 fit (near-minimax in relative error on [−0.5, 0.5], constant term exactly 1 so that
// a row's largest logit gives P = 8191 exactly) errs by < 1.1e-4 relative: under one of the 1/8191 steps P is
// quantized to, far below what Sage's INT8 logits already cost (degree 4 was slower for no accuracy the tests can
// see: NOTES.md). The exact kernel's degree 6 (Taylor) errs by < 2e-7 (f32 rounding
// dominates).

import { madd } from "./madd";

const ROUND_MAGIC: f32 = 12582912.0; // 1.5 · 2^23
const ROUND_MAGIC_BITS: i32 = 0x4b400000;
const C1: f32 = 0.6931471805599453;
const C2: f32 = 0.2402265069591007;
const C3: f32 = 0.05550410866482158;
const C4: f32 = 0.009618129107628477;
const C5: f32 = 0.0013333558146428443;
const C6: f32 = 0.00015403530393381606;
// Degree-3 fit of 2^f on [−0.5, 0.5] with 2^0 = 1 exactly.
const F1: f32 = 0.6932829320524524;
const F2: f32 = 0.24221098295843638;
const F3: f32 = 0.055008917386543454;

// @ts-ignore: decorator
@inline function scaleByPow2(poly: v128, t: v128): v128 {
  // t's bits are ROUND_MAGIC_BITS + k; (k + 127) << 23 is 2^k.
  const e = i32x4.shl(i32x4.sub(t, i32x4.splat(ROUND_MAGIC_BITS - 127)), 23);
  return f32x4.mul(poly, e);
}

/**
 * scale·2^x for x ≤ 0, x flushed to −30 below (the int8 kernel quantizes P to 1/8191 steps, so that is 0).
 * `scale` multiplies the polynomial's coefficients, so P·8191 costs no extra multiply.
 */
// @ts-ignore: decorator
@inline export function exp2Fast(x: v128, scale: f32 = 1.0): v128 {
  const xc = f32x4.pmax(x, f32x4.splat(-30.0));
  const t = f32x4.add(xc, f32x4.splat(ROUND_MAGIC));
  const f = f32x4.sub(xc, f32x4.sub(t, f32x4.splat(ROUND_MAGIC)));
  let p = f32x4.splat(F3 * scale);
  p = madd(p, f, f32x4.splat(F2 * scale));
  p = madd(p, f, f32x4.splat(F1 * scale));
  p = madd(p, f, f32x4.splat(scale));
  // t's bits are ROUND_MAGIC_BITS + k, and ROUND_MAGIC_BITS << 23 wraps to 0: t << 23 is k in the exponent field,
  // added to the polynomial's (which stays ≥ 2^-30·0.7·scale, normal): one integer add instead of building 2^k
  // and multiplying.
  return i32x4.add(p, i32x4.shl(t, 23));
}

/** 2^x for x ≤ 0 to f32 accuracy, down to 2^-125 (below that the value is treated as 2^-125, i.e. nothing). */
// @ts-ignore: decorator
@inline export function exp2Accurate(x: v128): v128 {
  const xc = f32x4.pmax(x, f32x4.splat(-125.0));
  const t = f32x4.add(xc, f32x4.splat(ROUND_MAGIC));
  const f = f32x4.sub(xc, f32x4.sub(t, f32x4.splat(ROUND_MAGIC)));
  let p = f32x4.splat(C6);
  p = madd(p, f, f32x4.splat(C5));
  p = madd(p, f, f32x4.splat(C4));
  p = madd(p, f, f32x4.splat(C3));
  p = madd(p, f, f32x4.splat(C2));
  p = madd(p, f, f32x4.splat(C1));
  p = madd(p, f, f32x4.splat(1.0));
  return scaleByPow2(p, t);
}

/** Largest of four lanes. */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  const a = f32x4.pmax(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  const b = f32x4.pmax(a, i32x4.shuffle(a, a, 1, 0, 3, 2));
  return f32x4.extract_lane(b, 0);
}

/** Sum of four i32 lanes. */
// @ts-ignore: decorator
@inline export function hsumI32(v: v128): i32 {
  const a = i32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  const b = i32x4.add(a, i32x4.shuffle(a, a, 1, 0, 3, 2));
  return i32x4.extract_lane(b, 0);
}

/** Sum of four f32 lanes. */
// @ts-ignore: decorator
@inline export function hsumF32(v: v128): f32 {
  const a = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  const b = f32x4.add(a, i32x4.shuffle(a, a, 1, 0, 3, 2));
  return f32x4.extract_lane(b, 0);
}
