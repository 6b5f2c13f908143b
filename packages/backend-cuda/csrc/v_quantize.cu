// v_quantize.cu — the second of the two launches that quantize V for "int8" and "fp8" P·V (docs/DESIGN.md §2 step 5):
// one CTA per (sequence·kv head, 128-key tile) takes each channel's scale sV = max |v| / 127 (fp8: / 448) from the chunk
// maxima v_absmax.cu left (the tile-0 CTA stores it for the attention kernel's epilogue), quantizes the tile, Vi =
// round(v / sV) half away from zero (fp8: e4m3 of v / sV, to nearest even, core's quantizeChannelsE4m3), and writes
// it as the Hopper kernel's P·V B operand: DP rows (channels) of 128 key bytes, K-major, the 16-byte chunks in wgmma's
// 128-byte swizzle and the keys of each 16 permuted as kv_vi_slot says, so that a thread's P logits (the Q·Kᵀ
// accumulator layout) are already its 8-bit A fragment (attention_sm90.cu). Keys past the sequence, up to its 128-row
// padding, are zeros. Memory-bound: V read once, Vi written once.
#include "dependent_launch.cuh"
#include "hopper_layout.h"
#include "kernels.h"
#include "kv_cache.h"
#include "mma.cuh"
#include "tensor_load.cuh"

namespace sa {
namespace {

template <int DP, bool PACKED, bool FP8>
__global__ void __launch_bounds__(kThreads) v_quantize_kernel(Geometry g, TensorRef v, Workspace w, int chunks, int tiles) {
  constexpr int kKeys = kHopperKeys, kWords = DP / 4, kPer = kKeys * kWords / kThreads;
  // The tile is quantized into row-major staging (one row per key) and read back a channel at a time; a word of
  // padding per row spreads one channel's keys over the banks.
  constexpr int kStride = DP + 4;
  __shared__ Divisor scales[DP];
  __shared__ uint32_t stage[kKeys * kStride / 4];
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

  Quad<PACKED> x[kPer];
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int i = threadIdx.x + j * kThreads, r = i / kWords, c0 = (i % kWords) * 4;
    x[j] = load_quad<PACKED>(v, base + r * v.sn + c0 * v.sd, c0, g.D, r < rows && c0 < g.D);
  }
  for (int c = threadIdx.x; c < DP; c += kThreads) {
    unsigned m = 0u;  // f32 bits of the largest |v|: NaN above every number
    for (int i = 0; i < chunks; i++) m = max(m, __float_as_uint(w.vpart[(int64_t(bx) * chunks + i) * DP + c]));
    const float scale = FP8 ? e4m3_scale(__uint_as_float(m)) : int8_scale(__uint_as_float(m));
    scales[c] = divisor(scale);
    if (tile == 0) w.vs[int64_t(bx) * DP + c] = scale;
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int i = threadIdx.x + j * kThreads, r = i / kWords, c0 = (i % kWords) * 4;
    const float4 f = widen(x[j], v.dtype);
    if constexpr (FP8) {
      stage[(r * kStride + c0) / 4] = e4m3x4(quotient(f.x, scales[c0]), quotient(f.y, scales[c0 + 1]), quotient(f.z, scales[c0 + 2]),
                                             quotient(f.w, scales[c0 + 3]));
    } else {
      const char4 q = make_char4(quantize(f.x, scales[c0]), quantize(f.y, scales[c0 + 1]), quantize(f.z, scales[c0 + 2]),
                                 quantize(f.w, scales[c0 + 3]));
      stage[(r * kStride + c0) / 4] = *reinterpret_cast<const uint32_t*>(&q);
    }
  }
  __syncthreads();
  // Word wi of channel row c holds the keys kv_vi_slot puts in bytes 4·wi .. 4·wi + 3: 2t, 2t + 1, 2t + 8, 2t + 9 of
  // the 16 keys from 16·(wi / 4), t = wi % 4.
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(stage);
  uint32_t* out = reinterpret_cast<uint32_t*>(w.vi + (int64_t(h) * g.rowsK + sq.kRow + r0) * DP);
  for (int o = threadIdx.x; o < DP * kKeys / 4; o += kThreads) {
    const int c = o / (kKeys / 4), wi = o % (kKeys / 4);
    const int k0 = 16 * (wi >> 2) + 2 * (wi & 3);
    static_assert(kv_vi_slot(2) == 4 && kv_vi_slot(3) == 5 && kv_vi_slot(10) == 6 && kv_vi_slot(11) == 7, "the cache's key order");
    const uint32_t word = uint32_t(bytes[k0 * kStride + c]) | uint32_t(bytes[(k0 + 1) * kStride + c]) << 8 |
                          uint32_t(bytes[(k0 + 8) * kStride + c]) << 16 | uint32_t(bytes[(k0 + 9) * kStride + c]) << 24;
    out[c * (kKeys / 4) + swizzle_chunk(wi >> 2, c, kKeys) * 4 + (wi & 3)] = word;
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
