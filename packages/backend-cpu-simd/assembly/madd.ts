// a·b + c on four f32 lanes: one fused instruction in the relaxed-SIMD build (relaxed_madd; V8 emits an FMA on
// x64), a multiply and an add in the SIMD128 build. The two builds may differ in the last bit where it is used.

// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
