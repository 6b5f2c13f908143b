// quantize.cuh — INT8 quantization as docs/DESIGN.md §2 step 2 defines it, on core's constants (log2(e), INT8 max):
// the logit fold of Q, a block's scale and the rounding. The pre-pass (prepass.cu), the KV cache (kv_append.cu) and
// decode (decode_attention.cu) all quantize through these, so they agree with each other and with core's oracle.
#pragma once
#include <cmath>
#include <cstdint>
#include "generated/core_constants.h"

namespace sa {

// smScale·log2(e), multiplied in double and rounded once to f32 (core's qFold): Q is quantized with it folded in,
// so logits come out in base-2 units.
__host__ __device__ inline float log2e_fold(float smScale) {
  return static_cast<float>(static_cast<double>(smScale) * kLog2e);
}

// The scale of a block whose largest magnitude is maxAbs: maxAbs/127, or 1 for an all-zero block (its values then
// quantize to 0), or NaN for a block holding NaN or ±inf (inputs not validated): as in core's oracle, the NaN then
// reaches every logit or output the block's values take part in, instead of them quantizing to finite garbage.
__host__ __device__ inline float int8_scale(float maxAbs) {
  return !(maxAbs < INFINITY) ? NAN : maxAbs > 0.f ? maxAbs / float(kInt8Max) : 1.f;
}
// The same for a V channel of "fp8" P·V, against e4m3's largest value (core's channelScales with top E4M3_MAX).
__host__ __device__ inline float e4m3_scale(float maxAbs) {
  return !(maxAbs < INFINITY) ? NAN : maxAbs > 0.f ? maxAbs / kE4m3Max : 1.f;
}

// The larger of a and b, or NaN where either is NaN (sm_80's max.NaN; fmaxf returns the other one). A block's
// magnitudes are taken with it, or else a NaN would give the block a finite scale.
__device__ __forceinline__ float fmax_nan(float a, float b) {
  float y;
  asm("max.NaN.f32 %0, %1, %2;\n" : "=f"(y) : "f"(a), "f"(b));
  return y;
}
__device__ __forceinline__ float quad_absmax(float x, float y, float z, float w) {
  return fmax_nan(fmax_nan(fabsf(x), fabsf(y)), fmax_nan(fabsf(z), fabsf(w)));
}
__device__ __forceinline__ float quad_absmax(const float4& x) { return quad_absmax(x.x, x.y, x.z, x.w); }

// A block's scale with its reciprocal, taken once per block: quantizing then costs a product and two FMAs per value
// instead of an IEEE division.
struct Divisor {
  float d, inv;
};
__device__ __forceinline__ Divisor divisor(float d) { return {d, __frcp_rn(d)}; }

// x / d rounded to nearest f32, as a true division gives it: y = x·(1/d), then one correction y + (x − y·d)·(1/d)
// (Markstein: with 1/d correctly rounded and y within an ulp, the corrected quotient is correctly rounded; the
// quotients here lie in [−127, 127]). Only for a d whose reciprocal is finite: `reciprocal_ok`.
__device__ __forceinline__ float quotient_by_reciprocal(float x, const Divisor& s) {
  const float y = __fmul_rn(x, s.inv);
  return __fmaf_rn(__fmaf_rn(-y, s.d, x), s.inv, y);
}
__device__ __forceinline__ bool reciprocal_ok(const Divisor& s) { return fabsf(s.inv) < INFINITY; }
// A d whose reciprocal is not finite (a subnormal scale) divides.
__device__ __forceinline__ float quotient(float x, const Divisor& s) {
  return reciprocal_ok(s) ? quotient_by_reciprocal(x, s) : __fdiv_rn(x, s.d);
}

// round(q) half away from zero, as an int: q + ±0.5 added toward zero, then truncated. Exact for |q| < 2²³: an add
// toward zero reaches the next integer only when the exact sum does. NaN gives 0 (its block's scale is NaN, which
// carries the NaN to every logit or output the value takes part in).
__device__ __forceinline__ int round_away(float q) { return __float2int_rz(__fadd_rz(q, copysignf(0.5f, q))); }

__device__ __forceinline__ int8_t quantize(float x, const Divisor& s) {
  // round(x / sQ) with the quotient correctly rounded (above), so ties land where the oracle's do; the clamp only
  // guards the INT8 range (a correctly rounded x / (max/127) stays within 127 + 2⁻¹⁶).
  constexpr int kMax = kInt8Max;
  return static_cast<int8_t>(min(kMax, max(-kMax, round_away(quotient(x, s)))));
}

// Four INT8 values in one word, a in the low byte, each rounded as `quantize` does. RECIPROCAL: the caller has checked
// `reciprocal_ok` for s, so no value tests it (false: each value does, as `quantize`). The pack saturates to the INT8
// range.
template <bool RECIPROCAL = false>
__device__ __forceinline__ uint32_t quantize4_word(float a, float b, float c, float d, const Divisor& s) {
  auto q = [&](float x) { return round_away(RECIPROCAL ? quotient_by_reciprocal(x, s) : quotient(x, s)); };
  uint32_t hi, word;
  asm("cvt.pack.sat.s8.s32.b32 %0, %1, %2, 0;" : "=r"(hi) : "r"(q(d)), "r"(q(c)));
  asm("cvt.pack.sat.s8.s32.b32 %0, %1, %2, %3;" : "=r"(word) : "r"(q(b)), "r"(q(a)), "r"(hi));
  return word;
}
template <bool RECIPROCAL = false>
__device__ __forceinline__ uint32_t quantize4_word(const float4& x, const Divisor& s) {
  return quantize4_word<RECIPROCAL>(x.x, x.y, x.z, x.w, s);
}

}  // namespace sa
