// Rounding helpers shared by the quantizers.

/** Rounds four f32 lanes half away from zero, exactly (trunc, then one step away when |fraction| ≥ 0.5). */
// @ts-ignore: decorator
@inline export function roundHalfAway(y: v128): v128 {
  const t = f32x4.trunc(y);
  const frac = f32x4.abs(f32x4.sub(y, t));
  const away = v128.or(v128.and(y, i32x4.splat(0x80000000)), f32x4.splat(1.0)); // ±1 with y's sign
  return f32x4.add(t, v128.and(f32x4.ge(frac, f32x4.splat(0.5)), away));
}

/** f32 lanes in (−2^22, 2^22) to the nearest i32 (ties to even); exact for integral lanes. Cheaper than trunc_sat. */
// @ts-ignore: decorator
@inline export function nearestI32(y: v128): v128 {
  return i32x4.sub(f32x4.add(y, f32x4.splat(12582912.0)), i32x4.splat(0x4b400000));
}

/** Eight f32 lanes (two vectors) of integers in i16 range to one i16x8 vector. */
// @ts-ignore: decorator
@inline export function packI16(a: v128, b: v128): v128 {
  return i16x8.narrow_i32x4_s(nearestI32(a), nearestI32(b));
}
