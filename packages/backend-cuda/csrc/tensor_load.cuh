// tensor_load.cuh — reading the caller's tensors and quantizing them, shared by the pre-pass (prepass.cu) and the KV
// cache (kv_append.cu): element loads in any dtype and stride, four-channel vector loads, a CTA-wide max, the
// quantization of docs/DESIGN.md §2 step 2 (quantize.cuh), and per-channel sums of K over a token range (the "K mean"
// stage).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <type_traits>
#include "geometry.cuh"
#include "quantize.cuh"

namespace sa {

constexpr int kThreads = 256;  // threads per CTA of every pre-pass and cache kernel

__device__ __forceinline__ float load(const TensorRef& t, int64_t off) {
  if (t.dtype == kDtypeF32) return reinterpret_cast<const float*>(t.ptr)[off];
  if (t.dtype == kDtypeF16) return __half2float(reinterpret_cast<const __half*>(t.ptr)[off]);
  return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(t.ptr)[off]);
}

// Four channels of a 16-bit tensor, packed two per word, as f32 (identity for f32 quads).
__device__ __forceinline__ float4 widen(float4 x, int) { return x; }
__device__ __forceinline__ float4 widen(uint2 raw, int dtype) {
  if (dtype == kDtypeF16) {
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&raw.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&raw.y));
    return make_float4(a.x, a.y, b.x, b.y);
  }
  const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
  const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
  return make_float4(a.x, a.y, b.x, b.y);
}

// Channels c..c+3 (c a multiple of 4) of the element at `off`; one vector load when the tensor allows it.
__device__ __forceinline__ float4 load4(const TensorRef& t, int64_t off, int c, int D) {
  if (t.vec4) {
    if (t.dtype == kDtypeF32) return *reinterpret_cast<const float4*>(reinterpret_cast<const float*>(t.ptr) + off);
    return widen(*reinterpret_cast<const uint2*>(reinterpret_cast<const uint16_t*>(t.ptr) + off), t.dtype);
  }
  float v[4];
#pragma unroll
  for (int j = 0; j < 4; j++) v[j] = c + j < D ? load(t, off + j * t.sd) : 0.f;
  return make_float4(v[0], v[1], v[2], v[3]);
}

// Four consecutive channels as loaded. 16-bit inputs whose channel quads are aligned vectors (PACKED) stay packed
// until used: 2 registers a quad instead of 4, so a CTA holds its whole block in fewer registers and more CTAs (more
// loads in flight) fit on an SM. The pre-pass is memory-bound, and latency-bound below ~4 CTAs per SM.
template <bool PACKED>
using Quad = std::conditional_t<PACKED, uint2, float4>;

// The quad at `off` (zeros when not `in`); PACKED: one 8-byte load, the caller having checked the tensor allows it.
template <bool PACKED>
__device__ __forceinline__ Quad<PACKED> load_quad(const TensorRef& t, int64_t off, int c, int D, bool in) {
  if constexpr (PACKED) return in ? *reinterpret_cast<const uint2*>(reinterpret_cast<const uint16_t*>(t.ptr) + off) : make_uint2(0u, 0u);
  else return in ? load4(t, off, c, D) : make_float4(0.f, 0.f, 0.f, 0.f);
}

// The largest of the CTA's magnitudes (fmax_nan: a NaN wins). Every thread of the CTA must call it.
__device__ __forceinline__ float block_max(float x, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) x = fmax_nan(x, __shfl_xor_sync(0xffffffffu, x, o));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  float m = 0.f;
  for (int i = 0; i < kThreads / 32; i++) m = fmax_nan(m, scratch[i]);
  return m;
}

// Per-channel folds of rows t0..t1 into out[0 .. DP) (shared memory; 0 past D), each row read four channels at a time
// by row(t, c0) -> float4 and folded by combine(acc, x) from 0. A thread owns 4 channels of every P-th row (P =
// kThreads / (DP/4) row phases); the phases are combined in order. Every thread of the CTA must call it.
template <typename Row, typename Combine>
__device__ inline void row_fold(int D, int DP, int t0, int t1, Row row, Combine combine, float4* partial, float* out) {
  const int groups = DP / 4, phases = kThreads / groups;
  const int grp = threadIdx.x % groups, phase = threadIdx.x / groups;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  if (phase < phases && grp * 4 < D) {
#pragma unroll 16
    for (int t = t0 + phase; t < t1; t += phases) {
      const float4 x = row(t, grp * 4);
      acc = make_float4(combine(acc.x, x.x), combine(acc.y, x.y), combine(acc.z, x.z), combine(acc.w, x.w));
    }
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int c = threadIdx.x; c < DP; c += kThreads) {
    float folded = 0.f;
    for (int ph = 0; ph < phases; ph++) folded = combine(folded, (&partial[ph * groups + c / 4].x)[c % 4]);
    out[c] = folded;
  }
}

template <typename Row>
__device__ inline void row_sums(int D, int DP, int t0, int t1, Row row, float4* partial, float* sums) {
  row_fold(D, DP, t0, t1, row, [](float a, float x) { return a + x; }, partial, sums);
}

// Sums of K over tokens t0..t1 of one (sequence, kv head), per channel (the "K mean" stage's partial sums); PACKED as
// for load_quad.
template <bool PACKED = false>
__device__ inline void channel_sums(const Geometry& g, const TensorRef& k, const Sequence& sq, int h, int t0, int t1,
                                    float4* partial, float* sums) {
  const int64_t base = sq.b * k.sb + h * k.sh + int64_t(sq.k0) * k.sn;
  row_sums(g.D, g.DP, t0, t1, [&](int t, int c0) { return widen(load_quad<PACKED>(k, base + t * k.sn + c0 * k.sd, c0, g.D, true), k.dtype); },
           partial, sums);
}

}  // namespace sa
