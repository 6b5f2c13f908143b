// kv_append.cu — the KV cache's write side (kv_cache.h): the stages "K mean", "K quantization" and "V conversion" for
// rows appended to a cache, and the re-centring of a cache on a new mean (requantize).
//   kv_sums:      one CTA per (head, chunk of ≥ 256 tokens, ≤ 16 chunks): per-channel sums into kpart, of the rows
//                 being appended (first append: the smoothing mean) or of the cache's dequantized rows (requantize).
//   kv_quantize:  one CTA per (head, 64-row block the call touches). The block's rows are gathered as K − mean in
//                 f32: rows already in the cache come from `raw` (the partial block) or, when requantizing, from
//                 Ki·sK + old mean − new mean; new rows from k. Then sK = max|x|/127 and Ki = round(x/sK) exactly as
//                 the pre-pass does (quantize.cuh), V → f16 (or INT8 per token) for new rows, and a block left
//                 partial keeps its rows in `raw`, so the next append re-quantizes it with the rows it then has.
// A thread owns 4 channels of every 64·DP/1024-th row of its block (a float4 per row it owns), all loads issued
// before the block max. Appends of one row are one launch of one CTA per head; the mean adds one launch.
#include <cuda_fp16.h>
#include "kernels.h"
#include "kv_cache.h"
#include "tensor_load.cuh"

namespace sa {
namespace {

constexpr int kBlock = kKBlock;  // rows per K quantization block

__device__ __forceinline__ int head_b(const KvCache& c, int head) { return head / c.Hkv; }
__device__ __forceinline__ int head_h(const KvCache& c, int head) { return head % c.Hkv; }

// Row t of the cache, dequantized and with the old mean added back: K̂ = Ki·sK + mean (docs/DESIGN.md §2, "Decode"),
// four channels at c0. Rows of the partial last block come from `raw` (which holds K − mean in f32).
__device__ __forceinline__ float4 cached_row(const KvCache& c, int head, int t, int c0, int length) {
  const int blk = t / kBlock;
  const float* mean = c.mean + int64_t(head) * c.DP + c0;
  float4 x;
  if (length % kBlock != 0 && blk == length / kBlock) {
    x = *reinterpret_cast<const float4*>(c.raw + (int64_t(head) * kBlock + t % kBlock) * c.DP + c0);
  } else {
    const char4 q = *reinterpret_cast<const char4*>(c.ki + (int64_t(head) * c.capPad + t) * c.DP + c0);
    const float s = c.ks[int64_t(head) * (c.capPad / kBlock) + blk];
    x = make_float4(q.x * s, q.y * s, q.z * s, q.w * s);
  }
  return make_float4(x.x + mean[0], x.y + mean[1], x.z + mean[2], x.w + mean[3]);
}

// The appended rows of a block (t >= length) as INT8 with one scale per row (the int8 value format): sV = max|v|/127
// and round(v/sV) exactly as K's blocks are quantized, each value one byte at its channel-major slot (kv_cache.h). A
// thread's float4 is 4 channels of one row: 4 bytes in 4 channel rows.
template <int DP>
__device__ __forceinline__ void store_values_int8(const KvCache& c, int head, int r0, int rows, int length, const float4* vv,
                                                  const unsigned* rowMaxBits) {
  constexpr int kQuads = DP / 4, kPer = kBlock * kQuads / kThreads;
  int8_t* blockOut = c.vi + (int64_t(head) * c.capPad + r0) * DP;  // r0 is a block's first row: the block's bytes
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int i = threadIdx.x + j * kThreads, r = i / kQuads, c0 = (i % kQuads) * 4;
    if (r >= rows || r0 + r < length) continue;
    const float scale = int8_scale(__uint_as_float(rowMaxBits[r]));
    const Divisor by = divisor(scale);
    const float f[4] = {vv[j].x, vv[j].y, vv[j].z, vv[j].w};
#pragma unroll
    for (int q = 0; q < 4; q++) blockOut[(c0 + q) * kBlock + kv_vi_slot(r)] = quantize(f[q], by);
    if (c0 == 0) c.vs[int64_t(head) * c.capPad + r0 + r] = scale;
  }
}

template <bool FROM_CACHE>
__global__ void __launch_bounds__(kThreads) kv_sums_kernel(KvCache c, TensorRef k, int rows, int chunkTokens, int length) {
  __shared__ float4 partial[kThreads];
  __shared__ float sums[256];
  const int head = blockIdx.x, chunk = blockIdx.y;
  const int t0 = chunk * chunkTokens, t1 = min(rows, t0 + chunkTokens);
  if constexpr (!FROM_CACHE) {
    Geometry g{};
    g.D = c.D;
    g.DP = c.DP;
    Sequence sq{};
    sq.b = head_b(c, head);
    sq.nk = rows;
    channel_sums(g, k, sq, head_h(c, head), t0, t1, partial, sums);
  } else {
    row_sums(c.D, c.DP, t0, t1, [&](int t, int c0) { return cached_row(c, head, t, c0, length); }, partial, sums);
  }
  __syncthreads();
  for (int ch = threadIdx.x; ch < c.DP; ch += kThreads) c.kpart[(int64_t(head) * kMaxMeanChunksKv + chunk) * c.DP + ch] = sums[ch];
}

enum class Mode { Append, AppendFirst, Requantize };

template <int DP, Mode MODE>
__global__ void __launch_bounds__(kThreads) kv_quantize_kernel(KvCache c, TensorRef k, TensorRef v, int length, int n, int chunks,
                                                               int firstBlock) {
  constexpr int kQuads = DP / 4, kPer = kBlock * kQuads / kThreads;
  __shared__ float meanS[DP];
  __shared__ float scratch[kThreads / 32];
  const int head = blockIdx.x, blk = firstBlock + int(blockIdx.y);
  const int b = head_b(c, head), h = head_h(c, head);
  const int total = MODE == Mode::Requantize ? length : length + n;  // rows in the cache after this call
  const int r0 = blk * kBlock, rows = min(kBlock, total - r0);

  // The mean the block is centred on: the new one (from the chunk sums, in chunk order: every CTA gets the same bits)
  // or the cache's.
  for (int ch = threadIdx.x; ch < DP; ch += kThreads) {
    float m;
    if constexpr (MODE == Mode::Append) {
      m = c.mean[int64_t(head) * DP + ch];
    } else {
      float sum = 0.f;
      for (int i = 0; i < chunks; i++) sum += c.kpart[(int64_t(head) * kMaxMeanChunksKv + i) * DP + ch];
      const int over = MODE == Mode::Requantize ? length : n;
      m = ch < c.D && over > 0 ? sum / over : 0.f;
    }
    meanS[ch] = m;
  }
  __syncthreads();

  float4 x[kPer];
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int i = threadIdx.x + j * kThreads, r = i / kQuads, c0 = (i % kQuads) * 4, t = r0 + r;
    float4 f = make_float4(0.f, 0.f, 0.f, 0.f);
    if (r < rows && c0 < c.D) {
      if constexpr (MODE == Mode::Requantize) {
        f = cached_row(c, head, t, c0, length);
      } else if (t < length) {  // an old row of the block that was partial: already K − mean
        f = *reinterpret_cast<const float4*>(c.raw + (int64_t(head) * kBlock + r) * DP + c0);
      } else {
        f = load4(k, int64_t(b) * k.sb + int64_t(h) * k.sh + int64_t(t - length) * k.sn + c0 * k.sd, c0, c.D);
      }
      if (MODE == Mode::Requantize || t >= length)
        f = make_float4(f.x - meanS[c0], f.y - meanS[c0 + 1], f.z - meanS[c0 + 2], f.w - meanS[c0 + 3]);
    }
    x[j] = f;
  }
  float mx = 0.f;
#pragma unroll
  for (int j = 0; j < kPer; j++) mx = fmax_nan(mx, quad_absmax(x[j].x, x[j].y, x[j].z, x[j].w));
  mx = block_max(mx, scratch);
  const float scale = int8_scale(mx);
  const Divisor by = divisor(scale);

  uint32_t* kout = reinterpret_cast<uint32_t*>(c.ki + (int64_t(head) * c.capPad + r0) * DP);
  float4* rawOut = reinterpret_cast<float4*>(c.raw + int64_t(head) * kBlock * DP);
  const bool partial = rows < kBlock;
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int i = threadIdx.x + j * kThreads, r = i / kQuads;
    kout[i] = r < rows ? quantize4_word(x[j], by) : 0u;
    if (partial && r < rows) rawOut[i] = x[j];
  }
  // The block's flag for decode's f16 sums (KvCache::ks): kept from earlier appends, set by this one's f16 V rows.
  float* ksAt = c.ks + int64_t(head) * (c.capPad / kBlock) + blk;
  const bool wasWide = threadIdx.x == 0 && r0 < length && signbit(*ksAt);
  bool wide = false;

  if constexpr (MODE != Mode::Requantize) {
    // V of the rows this call appends, loaded once; the int8 format also needs each row's max first.
    float4 vv[kPer];
    __shared__ unsigned rowMaxBits[kBlock];  // max |v| per row as float bits (non-negative floats order as integers)
    if (c.vInt8)
      for (int r = threadIdx.x; r < kBlock; r += kThreads) rowMaxBits[r] = 0u;
#pragma unroll
    for (int j = 0; j < kPer; j++) {
      const int i = threadIdx.x + j * kThreads, r = i / kQuads, c0 = (i % kQuads) * 4, t = r0 + r;
      vv[j] = r < rows && t >= length && c0 < c.D
                  ? load4(v, int64_t(b) * v.sb + int64_t(h) * v.sh + int64_t(t - length) * v.sn + c0 * v.sd, c0, c.D)
                  : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    if (c.vInt8) {
      __syncthreads();
#pragma unroll
      for (int j = 0; j < kPer; j++) {
        const int r = (threadIdx.x + j * kThreads) / kQuads;
        const float4 f = vv[j];
        if (r < rows && r0 + r >= length)
          atomicMax(&rowMaxBits[r], __float_as_uint(quad_absmax(f.x, f.y, f.z, f.w)));
      }
      __syncthreads();
      store_values_int8<DP>(c, head, r0, rows, length, vv, rowMaxBits);
    } else {
      ushort4* vout = reinterpret_cast<ushort4*>(c.vh + (int64_t(head) * c.capPad + r0) * DP);
#pragma unroll
      for (int j = 0; j < kPer; j++) {
        const int i = threadIdx.x + j * kThreads, r = i / kQuads;
        const float4 f = vv[j];
        if (r < rows && r0 + r >= length) {
          const ushort4 h = make_ushort4(__half_as_ushort(__float2half_rn(f.x)), __half_as_ushort(__float2half_rn(f.y)),
                                         __half_as_ushort(__float2half_rn(f.z)), __half_as_ushort(__float2half_rn(f.w)));
          vout[i] = h;
          wide |= past_f16_block_limit(h);
        }
      }
    }
  }
  // Every thread gets here (MODE and c.vInt8 are the same across the CTA).
  const bool flagged = __syncthreads_or(wide || wasWide);
  if (threadIdx.x == 0) *ksAt = flagged ? -scale : scale;
  // The new mean, once per head: the cache's own (first append), or `next` until every block of a requantize is done.
  if (MODE != Mode::Append && blockIdx.y == 0)
    for (int ch = threadIdx.x; ch < DP; ch += kThreads) (MODE == Mode::Requantize ? c.next : c.mean)[int64_t(head) * DP + ch] = meanS[ch];
}

template <Mode MODE>
cudaError_t launch_quantize(const KvCache& c, const TensorRef& k, const TensorRef& v, int length, int n, int chunks, dim3 grid,
                            int firstBlock, cudaStream_t stream) {
  switch (c.DP) {
    case 64: kv_quantize_kernel<64, MODE><<<grid, kThreads, 0, stream>>>(c, k, v, length, n, chunks, firstBlock); break;
    case 96: kv_quantize_kernel<96, MODE><<<grid, kThreads, 0, stream>>>(c, k, v, length, n, chunks, firstBlock); break;
    case 128: kv_quantize_kernel<128, MODE><<<grid, kThreads, 0, stream>>>(c, k, v, length, n, chunks, firstBlock); break;
    case 256: kv_quantize_kernel<256, MODE><<<grid, kThreads, 0, stream>>>(c, k, v, length, n, chunks, firstBlock); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

// Chunks of a mean over `rows` tokens: as the pre-pass's (≥ kMinMeanChunk tokens each, at most kMaxMeanChunks).
static_assert(kMaxMeanChunks <= kMaxMeanChunksKv, "the cache's kpart region holds kMaxMeanChunksKv chunk sums a head");
int mean_chunks(int rows) { return rows <= 0 ? 1 : kmean_chunks(rows); }

}  // namespace

cudaError_t launch_kv_append(const KvCache& c, const TensorRef& k, const TensorRef& v, int length, int n, bool firstMean,
                             cudaStream_t stream) {
  const unsigned heads = unsigned(c.B) * c.Hkv;
  if (heads == 0 || n <= 0) return cudaSuccess;
  const int firstBlock = length / kBlock, lastBlock = (length + n - 1) / kBlock;
  const dim3 grid(heads, unsigned(lastBlock - firstBlock + 1));
  if (!firstMean) return launch_quantize<Mode::Append>(c, k, v, length, n, 0, grid, firstBlock, stream);
  const int chunks = mean_chunks(n);
  kv_sums_kernel<false><<<dim3(heads, unsigned(chunks)), kThreads, 0, stream>>>(c, k, n, kmean_chunk_tokens(n), 0);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  return launch_quantize<Mode::AppendFirst>(c, k, v, length, n, chunks, grid, firstBlock, stream);
}

cudaError_t launch_kv_requantize(const KvCache& c, int length, cudaStream_t stream) {
  const unsigned heads = unsigned(c.B) * c.Hkv;
  if (heads == 0 || length <= 0) return cudaSuccess;
  const int chunks = mean_chunks(length);
  const TensorRef none{};
  kv_sums_kernel<true><<<dim3(heads, unsigned(chunks)), kThreads, 0, stream>>>(c, none, length, kmean_chunk_tokens(length), length);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  e = launch_quantize<Mode::Requantize>(c, none, none, length, 0, chunks, dim3(heads, unsigned(ceil_div(length, kBlock))), 0, stream);
  if (e != cudaSuccess) return e;
  return cudaMemcpyAsync(c.mean, c.next, size_t(heads) * c.DP * sizeof(float), cudaMemcpyDeviceToDevice, stream);
}

}  // namespace sa
