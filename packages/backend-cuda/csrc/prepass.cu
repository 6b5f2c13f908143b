// prepass.cu — the pre-pass of SageAttention (DESIGN §2 steps 1, 2 and 5's V conversion), three kernels:
//   kmean:       (sequences over kInlineMeanTokens keys; shorter ones sum K inside each quantize CTA)
//                one CTA per (sequence·kv head, chunk of 2048 tokens); thread owns 4 channels of every P-th token
//                (P = 256 / (DP/4) token phases); long sequences sum chunk partials in kmean_finalize (fixed order:
//                deterministic, no atomics).
//   quantize (one launch, two roles):
//   quantize_q:  one CTA per (sequence·head, 128-token block); x = q·smScale·log2e, sQ = max|x|/127,
//                Qi = round(x/sQ) half away from zero; a zero block gets sQ = 1. With the LSE it also writes
//                smScale·(q·mean(K)) per row, the constant the smoothing removed.
//   quantize_kv: one CTA per (sequence·kv head, 64-token block); the same for K − mean (no scale folded) and V → f16.
// Every CTA writes its whole padded block (rows past the sequence and channels past D as zeros), so the attention
// kernel never reads memory nothing wrote. Each thread handles 4 consecutive channels of a row (one 32-bit word of
// int8 output). Memory-bound: about 3 bytes read and 1.5 written per input element, ~1 ms of 40 at B4 H32 N16K D128.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "kernels.h"

namespace sa {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float load(const TensorRef& t, int64_t off) {
  if (t.dtype == 0) return reinterpret_cast<const float*>(t.ptr)[off];
  if (t.dtype == 1) return __half2float(reinterpret_cast<const __half*>(t.ptr)[off]);
  return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(t.ptr)[off]);
}

// Channels c..c+3 (c a multiple of 4) of the element at `off`; one vector load when the tensor allows it.
__device__ __forceinline__ float4 load4(const TensorRef& t, int64_t off, int c, int D) {
  if (t.vec4) {
    if (t.dtype == 0) return *reinterpret_cast<const float4*>(reinterpret_cast<const float*>(t.ptr) + off);
    const uint2 raw = *reinterpret_cast<const uint2*>(reinterpret_cast<const uint16_t*>(t.ptr) + off);
    if (t.dtype == 1) {
      const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&raw.x));
      const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&raw.y));
      return make_float4(a.x, a.y, b.x, b.y);
    }
    const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
    const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
    return make_float4(a.x, a.y, b.x, b.y);
  }
  float v[4];
#pragma unroll
  for (int j = 0; j < 4; j++) v[j] = c + j < D ? load(t, off + j * t.sd) : 0.f;
  return make_float4(v[0], v[1], v[2], v[3]);
}

__device__ __forceinline__ float block_max(float x, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  float m = 0.f;
  for (int i = 0; i < kThreads / 32; i++) m = fmaxf(m, scratch[i]);
  return m;
}

__device__ __forceinline__ int8_t quantize(float x, float scale) {
  // x / sQ as DESIGN writes it (a true division, not x·(1/sQ), so ties land where the oracle's do); roundf rounds
  // half away from zero; the clamp only guards against x/sQ landing a hair over 127.
  return static_cast<int8_t>(fminf(127.f, fmaxf(-127.f, roundf(__fdiv_rn(x, scale)))));
}

constexpr int kMeanChunk = 2048;  // tokens per kmean CTA (kmean_chunks in kernels.h)
// Up to this many keys per sequence, each quantize CTA sums K itself instead of a separate kmean launch: one launch
// less per call (~2-3 µs of host time) against ≤ 1024·D re-read elements per CTA from L2.
constexpr int kInlineMeanTokens = 1024;

// Sums of K over tokens t0..t1 of one (sequence, kv head), per channel, into sums[0 .. DP) (shared memory; zeros past
// D and when not smoothing). Every thread of the CTA must call it.
__device__ void channel_sums(const Geometry& g, const TensorRef& k, const Sequence& sq, int h, int t0, int t1, bool smooth,
                             float4* partial, float* sums) {
  const int groups = g.DP / 4, phases = kThreads / groups;
  const int grp = threadIdx.x % groups, phase = threadIdx.x / groups;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  if (smooth && phase < phases && grp * 4 < g.D) {
    const int64_t base = sq.b * k.sb + h * k.sh + int64_t(sq.k0) * k.sn + grp * 4 * k.sd;
#pragma unroll 4
    for (int t = t0 + phase; t < t1; t += phases) {
      const float4 x = load4(k, base + t * k.sn, grp * 4, g.D);
      acc.x += x.x;
      acc.y += x.y;
      acc.z += x.z;
      acc.w += x.w;
    }
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int c = threadIdx.x; c < g.DP; c += kThreads) {
    float sum = 0.f;
    for (int ph = 0; ph < phases; ph++) {
      const float4 x = partial[ph * groups + c / 4];
      sum += (&x.x)[c % 4];
    }
    sums[c] = sum;
  }
  __syncthreads();
}

__global__ void __launch_bounds__(kThreads) kmean_kernel(Geometry g, TensorRef k, float* kpart, float* kmean, int chunks,
                                                          bool smooth) {
  __shared__ float4 partial[kThreads];
  __shared__ float sums[256];
  const int s = blockIdx.x / g.Hkv, h = blockIdx.x % g.Hkv;
  const Sequence sq = sequence(g, s);
  const int t0 = blockIdx.y * kMeanChunk, t1 = min(sq.nk, t0 + kMeanChunk);
  channel_sums(g, k, sq, h, t0, t1, smooth, partial, sums);
  for (int c = threadIdx.x; c < g.DP; c += kThreads) {
    if (chunks == 1) kmean[int64_t(blockIdx.x) * g.DP + c] = (c < g.D && sq.nk > 0) ? sums[c] / sq.nk : 0.f;
    else kpart[(int64_t(blockIdx.x) * chunks + blockIdx.y) * g.DP + c] = sums[c];
  }
}

// The mean of K for (sequence s, kv head h) computed by this CTA alone into shared `mean` (short sequences: saves the
// kmean launch, which costs more than re-reading a few KB of K from L2). Same code and order as kmean_kernel.
__device__ void inline_mean(const Geometry& g, const TensorRef& k, int s, int h, bool smooth, float4* partial, float* mean) {
  const Sequence sq = sequence(g, s);
  channel_sums(g, k, sq, h, 0, sq.nk, smooth, partial, mean);
  for (int c = threadIdx.x; c < g.DP; c += kThreads) mean[c] = (c < g.D && sq.nk > 0) ? mean[c] / sq.nk : 0.f;
  __syncthreads();
}

__global__ void kmean_finalize_kernel(Geometry g, const float* kpart, float* kmean, int chunks) {
  const int s = blockIdx.x / g.Hkv;
  const Sequence sq = sequence(g, s);
  for (int c = threadIdx.x; c < g.DP; c += blockDim.x) {
    float sum = 0.f;
    for (int i = 0; i < chunks; i++) sum += kpart[(int64_t(blockIdx.x) * chunks + i) * g.DP + c];
    kmean[int64_t(blockIdx.x) * g.DP + c] = (c < g.D && sq.nk > 0) ? sum / sq.nk : 0.f;
  }
}

// Each CTA keeps its block in registers: every element is loaded once, and all of a thread's loads are issued
// before the first use (memory-level parallelism), then the block max, then quantization from registers.
template <int DP>
__device__ __forceinline__ void quantize_q(const Geometry& g, const TensorRef& q, const TensorRef& k, const Workspace& w,
                                           float fold, float smScale, bool lse, bool smooth, bool inlineMean, int bx, int by,
                                           float* scratch, float4* partial, float* meanS) {
  constexpr int kWords = DP / 4, kPer = kQBlock * kWords / kThreads;
  const int s = bx / g.Hq, h = bx % g.Hq;
  const Sequence sq = sequence(g, s);
  const int r0 = by * kQBlock;
  if (r0 >= sq.nq) return;
  const int rows = min(kQBlock, sq.nq - r0);
  const int64_t base = sq.b * q.sb + h * q.sh + int64_t(sq.q0 + r0) * q.sn;

  float4 x[kPer];
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int i = threadIdx.x + j * kThreads, r = i / kWords, c0 = (i % kWords) * 4;
    x[j] = r < rows && c0 < g.D ? load4(q, base + r * q.sn + c0 * q.sd, c0, g.D) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  float mx = 0.f;
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    x[j] = make_float4(x[j].x * fold, x[j].y * fold, x[j].z * fold, x[j].w * fold);
    mx = fmaxf(mx, fmaxf(fmaxf(fabsf(x[j].x), fabsf(x[j].y)), fmaxf(fabsf(x[j].z), fabsf(x[j].w))));
  }
  mx = block_max(mx, scratch);
  const float scale = mx > 0.f ? mx / 127.f : 1.f;
  // Rows past the sequence and channels past D were loaded as 0 and quantize to 0.
  char4* out = reinterpret_cast<char4*>(w.qi + (int64_t(h) * g.rowsQ + sq.qRow + r0) * DP);
#pragma unroll
  for (int j = 0; j < kPer; j++)
    out[threadIdx.x + j * kThreads] = make_char4(quantize(x[j].x, scale), quantize(x[j].y, scale), quantize(x[j].z, scale), quantize(x[j].w, scale));
  if (threadIdx.x == 0) w.qs[int64_t(h) * g.qSlots + sq.qSlot + by] = scale;

  if (lse) {
    // Two threads per row, each summing every other channel.
    const int r = threadIdx.x >> 1;
    const float* mean = w.kmean + (int64_t(s) * g.Hkv + h / g.group) * DP;
    if (inlineMean) {
      inline_mean(g, k, s, h / g.group, smooth, partial, meanS);
      mean = meanS;
    }
    float dot = 0.f;
    if (r < rows)
      for (int c = threadIdx.x & 1; c < g.D; c += 2) dot += load(q, base + r * q.sn + c * q.sd) * mean[c];
    dot += __shfl_xor_sync(0xffffffffu, dot, 1);
    if ((threadIdx.x & 1) == 0) w.qm[int64_t(h) * g.rowsQ + sq.qRow + r0 + r] = smScale * dot;
  }
}

template <int DP>
__device__ __forceinline__ void quantize_kv(const Geometry& g, const TensorRef& k, const TensorRef& v, const Workspace& w,
                                            bool smooth, bool inlineMean, int bx, int by, float* scratch, float4* partial,
                                            float* meanS) {
  constexpr int kWords = DP / 4, kPer = kKBlock * kWords / kThreads;
  const int s = bx / g.Hkv, h = bx % g.Hkv;
  const Sequence sq = sequence(g, s);
  const int r0 = by * kKBlock;
  if (r0 >= sq.nk) return;
  const int rows = min(kKBlock, sq.nk - r0);
  const int64_t kbase = sq.b * k.sb + h * k.sh + int64_t(sq.k0 + r0) * k.sn;
  const int64_t vbase = sq.b * v.sb + h * v.sh + int64_t(sq.k0 + r0) * v.sn;
  const float* mean = w.kmean + int64_t(bx) * DP;
  if (inlineMean) {
    inline_mean(g, k, s, h, smooth, partial, meanS);
    mean = meanS;
  }

  float4 x[kPer], y[kPer];
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int i = threadIdx.x + j * kThreads, r = i / kWords, c0 = (i % kWords) * 4;
    const bool in = r < rows && c0 < g.D;
    x[j] = in ? load4(k, kbase + r * k.sn + c0 * k.sd, c0, g.D) : make_float4(0.f, 0.f, 0.f, 0.f);
    y[j] = in ? load4(v, vbase + r * v.sn + c0 * v.sd, c0, g.D) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  float mx = 0.f;
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int i = threadIdx.x + j * kThreads, r = i / kWords, c0 = (i % kWords) * 4;
    // Padding stays 0 (not −mean) so it quantizes to 0; mean is 0 past D.
    if (r < rows) x[j] = make_float4(x[j].x - mean[c0], x[j].y - mean[c0 + 1], x[j].z - mean[c0 + 2], x[j].w - mean[c0 + 3]);
    mx = fmaxf(mx, fmaxf(fmaxf(fabsf(x[j].x), fabsf(x[j].y)), fmaxf(fabsf(x[j].z), fabsf(x[j].w))));
  }
  mx = block_max(mx, scratch);
  const float scale = mx > 0.f ? mx / 127.f : 1.f;

  const int64_t row0 = int64_t(h) * g.rowsK + sq.kRow + r0;
  char4* kout = reinterpret_cast<char4*>(w.ki + row0 * DP);
  ushort4* vout = reinterpret_cast<ushort4*>(w.vh + row0 * DP);
  auto f16 = [](float f) { return __half_as_ushort(__float2half_rn(f)); };
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int i = threadIdx.x + j * kThreads;
    kout[i] = make_char4(quantize(x[j].x, scale), quantize(x[j].y, scale), quantize(x[j].z, scale), quantize(x[j].w, scale));
    vout[i] = make_ushort4(f16(y[j].x), f16(y[j].y), f16(y[j].z), f16(y[j].w));
  }
  if (threadIdx.x == 0) w.ks[int64_t(h) * g.kSlots + sq.kSlot + by] = scale;
}

// One launch for both roles: the first qBlocks·S·Hq CTAs quantize Q blocks, the rest K/V blocks (fewer launches:
// the per-call cost of small problems is mostly launches).
template <int DP>
__global__ void __launch_bounds__(kThreads) quantize_kernel(Geometry g, TensorRef q, TensorRef k, TensorRef v, Workspace w,
                                                             float fold, float smScale, bool lse, bool smooth, bool inlineMean,
                                                             int qBlocks, int kBlocks) {
  __shared__ float scratch[kThreads / 32];
  __shared__ float4 partial[kThreads];
  __shared__ float meanS[256];
  const int64_t qCtas = int64_t(g.S) * g.Hq * qBlocks;
  const int64_t b = blockIdx.x;
  if (b < qCtas)
    quantize_q<DP>(g, q, k, w, fold, smScale, lse, smooth, inlineMean, int(b / qBlocks), int(b % qBlocks), scratch, partial, meanS);
  else
    quantize_kv<DP>(g, k, v, w, smooth, inlineMean, int((b - qCtas) / kBlocks), int((b - qCtas) % kBlocks), scratch, partial, meanS);
}

}  // namespace

cudaError_t launch_prepass(const Geometry& g, const TensorRef& q, const TensorRef& k, const TensorRef& v,
                           const Workspace& w, float smScale, bool smoothK, bool lse, cudaStream_t stream) {
  const float fold = static_cast<float>(static_cast<double>(smScale) * 1.4426950408889634);
  const bool inlineMean = g.maxK <= kInlineMeanTokens;
  const int chunks = kmean_chunks(g.maxK);
  if (!inlineMean) kmean_kernel<<<dim3(g.S * g.Hkv, chunks), kThreads, 0, stream>>>(g, k, w.kpart, w.kmean, chunks, smoothK);
  if (!inlineMean && chunks > 1) kmean_finalize_kernel<<<g.S * g.Hkv, 128, 0, stream>>>(g, w.kpart, w.kmean, chunks);
  const int qBlocks = int(ceil_div(g.maxQ, kQBlock)), kBlocks = int(ceil_div(g.maxK, kKBlock));
  const int64_t ctas = int64_t(g.S) * (int64_t(g.Hq) * qBlocks + int64_t(g.Hkv) * kBlocks);
  if (ctas > 0 && qBlocks > 0 && kBlocks > 0) {
    const unsigned n = static_cast<unsigned>(ctas);
    switch (g.DP) {
      case 64: quantize_kernel<64><<<n, kThreads, 0, stream>>>(g, q, k, v, w, fold, smScale, lse, smoothK, inlineMean, qBlocks, kBlocks); break;
      case 96: quantize_kernel<96><<<n, kThreads, 0, stream>>>(g, q, k, v, w, fold, smScale, lse, smoothK, inlineMean, qBlocks, kBlocks); break;
      case 128: quantize_kernel<128><<<n, kThreads, 0, stream>>>(g, q, k, v, w, fold, smScale, lse, smoothK, inlineMean, qBlocks, kBlocks); break;
      default: quantize_kernel<256><<<n, kThreads, 0, stream>>>(g, q, k, v, w, fold, smScale, lse, smoothK, inlineMean, qBlocks, kBlocks); break;
    }
  }
  return cudaGetLastError();
}

}  // namespace sa
