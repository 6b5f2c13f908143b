// v_quantize.cu — the second of the two launches that quantize V for "int8" and "fp8" P·V (docs/DESIGN.md §2 step 5):
// one CTA per (sequence·kv head, 128-key tile) takes each channel's scale sV = max |v| / 127 (fp8: / 448) from the chunk
// maxima v_absmax.cu left (the tile-0 CTA stores it for the attention kernel's epilogue), quantizes the tile, Vi =
// round(v / sV) half away from zero (fp8: e4m3 of v / sV, to nearest even, core's quantizeChannelsE4m3), and writes
// it as the Hopper kernel's P·V B operand: DP rows (channels) of 128 key bytes, K-major, the 16-byte chunks in wgmma's
// 128-byte swizzle and the keys of each 16 permuted as kv_vi_slot says, so that a thread's P logits (the Q·Kᵀ
// accumulator layout) are already its 8-bit A fragment (attention_sm90.cu). Keys past the sequence, up to its 128-row
// padding, are zeros. Memory-bound: V read once, Vi written once, each lane packing its output words in registers.
#include "dependent_launch.cuh"
#include "hopper_layout.h"
#include "kernels.h"
#include "kv_cache.h"
#include "mma.cuh"
#include "tensor_load.cuh"

namespace sa {
namespace {

// A float4's component j (j a compile-time constant once unrolled).
__device__ __forceinline__ float component(const float4& f, int j) { return j == 0 ? f.x : j == 1 ? f.y : j == 2 ? f.z : f.w; }

template <int DP, bool PACKED, bool FP8>
__global__ void __launch_bounds__(kThreads) v_quantize_kernel(Geometry g, TensorRef v, Workspace w, int chunks, int tiles) {
  // Lane l of every warp owns output word l of each of its warp's channel rows: keys k0, k0 + 1, k0 + 8, k0 + 9 with
  // k0 = 16·(l / 4) + 2·(l % 4). It loads those four keys' values of its warp's kCw channels and packs each channel's
  // four bytes in registers, so no staging through shared memory; a warp's store per channel is one 128-byte row.
  constexpr int kKeys = kHopperKeys, kCw = DP / (kThreads / 32), kQuads = kCw / 4;
  static_assert(kKeys == 128 && kThreads == 256 && kCw % 4 == 0, "32 lanes × 4 keys cover a tile; warps split the channels");
  __shared__ Divisor scales[DP];
  // A programmatic dependent of v_absmax (vpart), and the previous call's attention kernel may still read vi.
  dependent_wait();
  dependent_release();
  const int bx = int(blockIdx.x) / tiles, tile = int(blockIdx.x) % tiles;
  const int h = bx % g.Hkv;
  const Sequence sq = sequence(g, bx / g.Hkv);
  const int r0 = tile * kKeys;
  if (r0 >= round_up(sq.nk, kKRowPad)) return;
  const int rows = max(0, min(kKeys, sq.nk - r0));
  const int64_t base = sq.b * v.sb + h * v.sh + int64_t(sq.k0 + r0) * v.sn;
  const int lane = threadIdx.x & 31, c0 = (threadIdx.x >> 5) * kCw;
  const int k0 = 16 * (lane >> 2) + 2 * (lane & 3);
  static_assert(kv_vi_slot(2) == 4 && kv_vi_slot(3) == 5 && kv_vi_slot(10) == 6 && kv_vi_slot(11) == 7, "the cache's key order");

  Quad<PACKED> x[4][kQuads];  // keys k0, k0 + 1, k0 + 8, k0 + 9
#pragma unroll
  for (int r = 0; r < 4; r++) {
    const int key = k0 + (r & 1) + 8 * (r >> 1);
#pragma unroll
    for (int q = 0; q < kQuads; q++) {
      const int c = c0 + 4 * q;
      x[r][q] = load_quad<PACKED>(v, base + key * v.sn + c * v.sd, c, g.D, key < rows && c < g.D);
    }
  }
  for (int c = threadIdx.x; c < DP; c += kThreads) {
    unsigned m = 0u;  // f32 bits of the largest |v|: NaN above every number
    for (int i = 0; i < chunks; i++) m = max(m, __float_as_uint(w.vpart[(int64_t(bx) * chunks + i) * DP + c]));
    const float scale = FP8 ? e4m3_scale(__uint_as_float(m)) : int8_scale(__uint_as_float(m));
    scales[c] = divisor(scale);
    if (tile == 0) w.vs[int64_t(bx) * DP + c] = scale;
  }
  __syncthreads();
  uint32_t* out = reinterpret_cast<uint32_t*>(w.vi + (int64_t(h) * g.rowsK + sq.kRow + r0) * DP);
#pragma unroll
  for (int q = 0; q < kQuads; q++) {
    float4 f[4];
#pragma unroll
    for (int r = 0; r < 4; r++) f[r] = widen(x[r][q], v.dtype);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int c = c0 + 4 * q + j;
      const Divisor s = scales[c];
      uint32_t word;
      if constexpr (FP8) {
        word = e4m3x4(quotient(component(f[0], j), s), quotient(component(f[1], j), s), quotient(component(f[2], j), s),
                      quotient(component(f[3], j), s));
      } else {
        const char4 b = make_char4(quantize(component(f[0], j), s), quantize(component(f[1], j), s), quantize(component(f[2], j), s),
                                   quantize(component(f[3], j), s));
        word = *reinterpret_cast<const uint32_t*>(&b);
      }
      out[c * (kKeys / 4) + swizzle_chunk(lane >> 2, c, kKeys) * 4 + (lane & 3)] = word;
    }
  }
}

template <int DP, bool FP8>
cudaError_t launch(bool packed, unsigned ctas, const Geometry& g, const TensorRef& v, const Workspace& w, int chunks, int tiles,
                   cudaStream_t stream) {
  return packed ? launch_dependent(v_quantize_kernel<DP, true, FP8>, dim3(ctas), dim3(kThreads), 0, stream, true, g, v, w, chunks, tiles)
                : launch_dependent(v_quantize_kernel<DP, false, FP8>, dim3(ctas), dim3(kThreads), 0, stream, true, g, v, w, chunks, tiles);
}
template <int DP>
cudaError_t launch(bool fp8, bool packed, unsigned ctas, const Geometry& g, const TensorRef& v, const Workspace& w, int chunks, int tiles,
                   cudaStream_t stream) {
  return fp8 ? launch<DP, true>(packed, ctas, g, v, w, chunks, tiles, stream) : launch<DP, false>(packed, ctas, g, v, w, chunks, tiles, stream);
}

}  // namespace

cudaError_t launch_v_quantize(const Geometry& g, const TensorRef& v, const Workspace& w, bool fp8, cudaStream_t stream) {
  const int tiles = int(round_up(g.maxK, kKRowPad) / kHopperKeys);
  const int64_t ctas = int64_t(g.S) * g.Hkv * tiles;
  if (ctas <= 0) return cudaSuccess;
  if (ctas >= (int64_t(1) << 31)) return cudaErrorInvalidConfiguration;
  // Packed loads need a 16-bit V whose channel quads are aligned vectors.
  const bool packed = v.dtype != kDtypeF32 && v.vec4;
  switch (g.DP) {
    case 64: return launch<64>(fp8, packed, unsigned(ctas), g, v, w, kmean_chunks(g.maxK), tiles, stream);
    case 128: return launch<128>(fp8, packed, unsigned(ctas), g, v, w, kmean_chunks(g.maxK), tiles, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sa
