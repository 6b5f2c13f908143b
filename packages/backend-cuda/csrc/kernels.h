// kernels.h — host-side entry points of the kernels, one per .cu file.
#pragma once
#include <cuda.h>  // CUtensorMap only: the driver entry point that fills one is looked up at run time
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include "geometry.cuh"

namespace sa {

// K is summed over token chunks in parallel (one CTA each) and every K/V quantize CTA adds its head's chunk sums
// itself, so there is no separate mean launch. At most kMaxMeanChunks chunks of at least kMinMeanChunk tokens: small
// N still gets many CTAs, and at large N no quantize CTA re-reads more than 16 partial rows from L2.
constexpr int kMinMeanChunk = 256;
constexpr int kMaxMeanChunks = 16;
inline int kmean_chunk_tokens(int maxK) {
  const int even = (maxK + kMaxMeanChunks - 1) / kMaxMeanChunks;
  const int rounded = (even + 63) / 64 * 64;
  return rounded < kMinMeanChunk ? kMinMeanChunk : rounded;
}
inline int kmean_chunks(int maxK) { return maxK <= 0 ? 1 : (maxK + kmean_chunk_tokens(maxK) - 1) / kmean_chunk_tokens(maxK); }

// prepass.cu: two launches. The first sums K over token chunks and (without the LSE) quantizes Q; the second
// quantizes K − mean and converts V (and, with the LSE, quantizes Q and writes smScale·q·mean(K)). One launch when K
// is a single chunk (maxK ≤ kMinMeanChunk) or not smoothed: the CTAs that need the mean sum K themselves.
// `hopper` writes the layout of hopper_layout.h (for attention_sm90.cu) instead of plain rows.
// `convertV` false: the attention kernel reads V from the caller's tensor itself (Hopper, f16), the pre-pass leaves it.
// `flagWideV` (with convertV): each K/V block also flags a V past kF16BlockVLimit, for the sm80 kernel's f16 sums.
cudaError_t launch_prepass(const Geometry& g, const TensorRef& q, const TensorRef& k, const TensorRef& v,
                           const Workspace& w, float smScale, bool smoothK, bool lse, bool hopper, bool convertV,
                           bool flagWideV, cudaStream_t stream);

// v_absmax.cu, v_quantize.cu ("int8" P·V, Hopper layout, padded head dims 64 and 128): the largest |V| of each channel
// over token chunks into vpart, then sV per channel of each (sequence, kv head) into vs and V as INT8 into vi, each
// 128-key tile the B operand of the Hopper kernel's u8·s8 wgmma. Launched after the pre-pass, as its dependents.
cudaError_t launch_v_absmax(const Geometry& g, const TensorRef& v, float* vpart, cudaStream_t stream);
cudaError_t launch_v_quantize(const Geometry& g, const TensorRef& v, const Workspace& w, bool fp8, cudaStream_t stream);

// How P·V is summed (sa_flags): f16 within each 64-key block then f32, f32 throughout, or (Hopper only) P as UINT8 and
// V as INT8 with exact int32 sums per 128-key tile, or P and V as FP8 e4m3 with f32 sums per 128-key tile.
enum PvMode { kPvF16Block, kPvF32, kPvInt8, kPvFp8 };

// The largest |V| whose 64-key f16 block sums cannot overflow (each P ≤ 1): core's valueLimit for "f16-block". Core
// scans a host V and sums in f32 past it; a device V is never scanned, so the pre-pass flags each block past it (its
// first sK negated, Workspace::ks), as kv_append.cu does a KV cache's (KvCache::ks), and the sm80 and decode kernels
// take such a block's P as P/64 in their f16 sums (kWideShift).
constexpr float kF16BlockVLimit = 65504.f / kKBlock;
// A flagged block's P is taken as P·2^−kWideShift in its f16 sums, which are then scaled back by 2^kWideShift as they
// join O in f32: exact (powers of two), and the sums stay finite.
constexpr int kWideShift = 6;
static_assert(float(1 << kWideShift) * kF16BlockVLimit <= 65504.f, "P·2^-kWideShift keeps a flagged block's f16 sums finite");

// Whether four f16 values (their bits) hold some |v| past kF16BlockVLimit, or ±inf or NaN: f16 magnitudes order as
// their bits do. The pre-pass and the KV append flag a block by it.
__device__ __forceinline__ bool past_f16_block_limit(ushort4 h) {
  const unsigned limit = __half_as_ushort(__float2half_rn(kF16BlockVLimit));
  return max(max(h.x & 0x7FFFu, h.y & 0x7FFFu), max(h.z & 0x7FFFu, h.w & 0x7FFFu)) > limit;
}

// Shared memory (bytes) the attention kernel needs at this padded head dim.
int attention_smem_bytes(int DP);

// attention_sm80.cu: INT8 Q·Kᵀ, online softmax in exp2, FP16 P·V, output in o's dtype and strides.
cudaError_t launch_attention(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal,
                             bool pvF32, cudaStream_t stream);

// attention_sm90.cu (sm_90a, padded head dims 64 and 128): the same on wgmma, reading the Hopper layout; without a
// causal mask one CTA per SM walks the work items, loading the next item while it finishes the current one.
// It reads V through a tensor map: f16 rows of DP channels, dims (channel, row, kv head, batch) innermost first with
// byte strides for the outer three; either the caller's f16 V (direct) or the pre-pass's rows (row = kRow + key).
struct VSource {
  uint64_t ptr;
  uint64_t dims[4];
  uint64_t strides[3];
};
int attention_sm90_smem_bytes(int DP, PvMode pv);
// False when the driver will not describe `v` (alignment, strides): the pre-pass then converts V.
bool attention_sm90_v_map(int DP, const VSource& v, CUtensorMap* map);
// With kPvInt8 it reads v_quantize.cu's vi and vs instead, and vMap is unused.
cudaError_t launch_attention_sm90(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal,
                                  PvMode pv, const CUtensorMap& vMap, bool vDirect, cudaStream_t stream);

}  // namespace sa
