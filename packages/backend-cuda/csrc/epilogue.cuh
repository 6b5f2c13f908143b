// epilogue.cuh — what both attention kernels (attention_sm80.cu, attention_sm90.cu) write at the end of a row:
// an output element in o's dtype, and the natural-log LSE with the smoothing constant restored (docs/DESIGN.md §2
// step 6).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "geometry.cuh"

namespace sa {

__device__ __forceinline__ void store_out(const TensorRef& o, int64_t off, float x) {
  if (o.dtype == kDtypeF32) reinterpret_cast<float*>(o.ptr)[off] = x;
  else if (o.dtype == kDtypeF16) reinterpret_cast<__half*>(o.ptr)[off] = __float2half_rn(x);
  else reinterpret_cast<__nv_bfloat16*>(o.ptr)[off] = __float2bfloat16_rn(x);
}

// Channels d and d + 1 (d even) of one row at `off` (channel d's element): one 4- or 8-byte store where o's layout
// allows vectors (vec4: unit channel stride, aligned rows, D a multiple of 4), else one store per channel inside D.
__device__ __forceinline__ void store_pair(const TensorRef& o, int64_t off, int d, int D, float x0, float x1) {
  if (o.vec4 && d + 1 < D) {
    if (o.dtype == kDtypeF32) *reinterpret_cast<float2*>(reinterpret_cast<float*>(o.ptr) + off) = make_float2(x0, x1);
    else if (o.dtype == kDtypeF16) *reinterpret_cast<__half2*>(reinterpret_cast<__half*>(o.ptr) + off) = __floats2half2_rn(x0, x1);
    else *reinterpret_cast<__nv_bfloat162*>(reinterpret_cast<__nv_bfloat16*>(o.ptr) + off) = __floats2bfloat162_rn(x0, x1);
    return;
  }
  if (d < D) store_out(o, off, x0);
  if (d + 1 < D) store_out(o, off + o.sd, x1);
}

// 1/l for a row's sum l: 0 for a row that saw no key (l = 0, its output stays 0), and NaN for a row whose sum is NaN
// (it saw a NaN logit, from a NaN block scale: unvalidated non-finite q or k). The NaN must reach the output even
// where the P·V sums dropped it ("int8" P·V turns a NaN P into a finite byte), as core's oracle fills such a row
// with NaN.
__device__ __forceinline__ float row_inverse(float l) { return l > 0.f ? 1.f / l : l == 0.f ? 0.f : NAN; }

// LSE of a row from its base-2 running max m and sum l, plus qm = smScale·(q·mean(K)); −∞ for a row that saw no key,
// NaN for a row whose sum is NaN (row_inverse).
__device__ __forceinline__ float row_lse(float m, float l, float qm) {
  constexpr float kLn2 = float(1.0 / kLog2e);  // ln(2), from core's log2(e)
  return l > 0.f ? (m + __log2f(l)) * kLn2 + qm : l == 0.f ? -INFINITY : NAN;
}

}  // namespace sa
