// prepass.cu — the pre-pass of SageAttention (docs/DESIGN.md §2, stages "K mean", "Q quantization", "K quantization",
// "V conversion"): one kernel with three roles by CTA index, in two launches, or one when K is a single mean chunk
// (see launch_prepass).
//   ksum:        one CTA per (sequence·kv head, chunk of kmean_chunk_tokens); a thread owns 4 channels of every P-th
//                token (P = 256 / (DP/4) token phases) and writes the chunk's per-channel sums to kpart.
//   quantize_q:  one CTA per (sequence·head, 128-token block); x = q·smScale·log2e, sQ = max|x|/127 over the block
//                (or over each 16 rows or each row: Geometry::qShift), Qi = round(x/sQ) half away from zero; a zero
//                block gets sQ = 1. With the LSE it also writes smScale·(q·mean(K)) per row, the constant the
//                smoothing removed.
//   quantize_kv: one CTA per (sequence·kv head, 64-token block); adds its head's chunk sums (≤ 16, in chunk order:
//                deterministic, no atomics) into the mean, then the same as Q for K − mean (no scale folded; one sK
//                per block, or per 16 keys, adjacent or one lane's MMA columns: Geometry::kShift, kThread), and
//                V → f16 rows, except where the Hopper kernel reads an f16 V from the caller's tensor itself (convertV
//                false); with flagWideV, a block holding some |V|
//                past kF16BlockVLimit stores its first sK negated (Workspace::ks), for the sm80 kernel's f16 sums.
// Every CTA writes its whole padded block (rows past the sequence and channels past D as zeros; K/V blocks up to the
// sequence's 128-row padding), so the attention kernel never reads memory nothing wrote. `hopper` writes the layout
// of hopper_layout.h for Qi and Ki instead of plain rows. Each thread handles 4 consecutive channels of a row (one
// 32-bit word of int8 output). Memory-bound: K is read twice and Q once, Qi and Ki written once; V read and written
// once as f16 rows only where it is converted.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <type_traits>
#include "dependent_launch.cuh"
#include "hopper_layout.h"
#include "kernels.h"
#include "tensor_load.cuh"

namespace sa {
namespace {

// Role of the first launch: the sums of one chunk of one (sequence, kv head) into kpart (zeros past the sequence).
template <bool PACKED>
__device__ void ksum_chunk(const Geometry& g, const TensorRef& k, const Workspace& w, int chunkTokens, int chunks, int bx,
                           int chunk, float4* partial, float* sums) {
  const int s = bx / g.Hkv, h = bx % g.Hkv;
  const Sequence sq = sequence(g, s);
  const int t0 = chunk * chunkTokens, t1 = min(sq.nk, t0 + chunkTokens);
  channel_sums<PACKED>(g, k, sq, h, t0, t1, partial, sums);
  __syncthreads();
  for (int c = threadIdx.x; c < g.DP; c += kThreads) w.kpart[(int64_t(bx) * chunks + chunk) * g.DP + c] = sums[c];
}

// The mean of K for (sequence s, kv head h) into shared `mean` (zeros when not smoothing): from the chunk sums the
// first launch left in kpart, added in chunk order (the same bits in every CTA of the head), or, when K is one chunk
// and the pre-pass is one launch (`summed`), from that chunk's sums taken here the same way (the same bits again).
// Every thread of the CTA must call it.
template <bool PACKED>
__device__ __forceinline__ void head_mean(const Geometry& g, const TensorRef& k, const Workspace& w, int s, int h, int chunks, bool smooth,
                          bool summed, float4* partial, float* mean) {
  const Sequence sq = sequence(g, s);
  if (smooth && summed) {
    channel_sums<PACKED>(g, k, sq, h, 0, sq.nk, partial, mean);
    __syncthreads();
    for (int c = threadIdx.x; c < g.DP; c += kThreads) mean[c] = (c < g.D && sq.nk > 0) ? (0.f + mean[c]) / sq.nk : 0.f;
    __syncthreads();
    return;
  }
  const float* part = w.kpart + (int64_t(s) * g.Hkv + h) * chunks * g.DP;
  for (int c = threadIdx.x; c < g.DP; c += kThreads) {
    float sum = 0.f;
    if (smooth)
      for (int i = 0; i < chunks; i++) sum += part[int64_t(i) * g.DP + c];
    mean[c] = (smooth && c < g.D && sq.nk > 0) ? sum / sq.nk : 0.f;
  }
  __syncthreads();
}

__device__ __forceinline__ uint16_t f16_bits(float f) { return __half_as_ushort(__float2half_rn(f)); }
// The quad as four f16 (f16 input: its own bits, exactly what converting through f32 gives).
template <typename Q>
__device__ __forceinline__ ushort4 to_f16x4(const Q& x, int dtype) {
  if constexpr (std::is_same_v<Q, uint2>)
    if (dtype == kDtypeF16) return make_ushort4(x.x & 0xFFFF, x.x >> 16, x.y & 0xFFFF, x.y >> 16);
  const float4 f = widen(x, dtype);
  return make_ushort4(f16_bits(f.x), f16_bits(f.y), f16_bits(f.z), f16_bits(f.w));
}
// Index of int8 word `i` (4 channels) of a row-major block of DP-byte rows, after the Hopper chunk swizzle. A CTA's
// words kThreads apart are a whole number of swizzle periods (8 rows) apart, so word i + j·kThreads lands at
// swizzled_word(i) + j·kThreads: the index is taken once per thread, not once per quad.
template <int DP, bool HOPPER>
__device__ __forceinline__ int swizzled_word(int i) {
  constexpr int kWords = DP / 4;
  static_assert(!HOPPER || (kThreads * 4) % (8 * DP) == 0, "a quad step of the CTA must keep the row's place in the swizzle");
  if constexpr (!HOPPER) return i;
  const int r = i / kWords, w = i % kWords;
  return r * kWords + swizzle_chunk(w >> 2, r, DP) * 4 + (w & 3);
}

// The largest magnitude of a thread's packed 16-bit quads (f16 or bf16), widened to f32: taken on the bits with the
// sign cleared, whose unsigned order is the values' (±inf above every number, NaN above ±inf, so a NaN still wins).
template <int kPer>
__device__ __forceinline__ float packed_absmax(const uint2 (&x)[kPer], int dtype) {
  constexpr uint32_t kMagnitude = 0x7FFF7FFFu;
  uint32_t m = 0u;
#pragma unroll
  for (int j = 0; j < kPer; j++) m = __vimax3_u16x2(m, x[j].x & kMagnitude, x[j].y & kMagnitude);
  const uint32_t top = max(m & 0xFFFFu, m >> 16);
  return widen(make_uint2(top, 0u), dtype).x;
}

// Where quad j (0 ≤ j < kPer) of this thread lies in a block of rows of DP channels: quad threadIdx.x + j·kThreads,
// 4 channels a quad. Where the CTA's width is whole rows of quads (kFixed), every quad of a thread has the same 4
// channels, kRowStep rows apart, and its address is the first one's plus j strides.
template <int DP>
struct QuadPlace {
  static constexpr int kWords = DP / 4;
  static constexpr bool kFixed = kThreads % kWords == 0;
  static constexpr int kRowStep = kThreads / kWords;
  __device__ static int row(int j) { return kFixed ? int(threadIdx.x) / kWords + j * kRowStep : (int(threadIdx.x) + j * kThreads) / kWords; }
  __device__ static int channel(int j) { return kFixed ? int(threadIdx.x) % kWords * 4 : (int(threadIdx.x) + j * kThreads) % kWords * 4; }
  // The element offset of quad j in t from `base` (the block's first row).
  __device__ static int64_t offset(const TensorRef& t, int64_t base, int j) {
    return kFixed ? base + row(0) * t.sn + channel(0) * t.sd + int64_t(j * kRowStep) * t.sn : base + row(j) * t.sn + channel(j) * t.sd;
  }
};

// Runs store(tag), tag::value true where every value may be divided by the block's reciprocal (checked once for the
// block). The finer granularities check each value against its group's scale: one check for all the groups made
// ptxas spill (up to 148 bytes at D256).
template <bool FINE, typename Store>
__device__ __forceinline__ void store_quantized(const Divisor& block, Store store) {
  if (!FINE && reciprocal_ok(block)) store(std::true_type{});
  else store(std::false_type{});
}

// The scale groups of a block at a finer granularity: 2^shift adjacent rows each, or (strided: K at "thread") the
// rows of k_thread_group, 2^(blockShift − shift) groups either way, numbered as their scales' slots are.
struct Grouping {
  int shift, blockShift;
  bool strided;
  __device__ int count() const { return 1 << (blockShift - shift); }
  __device__ int of(int row) const { return strided ? k_thread_group(row) : row >> shift; }
};

// The scale of each quad of a block of 2^blockShift rows that the CTA holds, kPer quads a thread, quad j on row
// (threadIdx.x + j·kThreads) / kWords, magnitude(j) its largest |value|: one scale for the whole block (returned), or
// (FINE) one per group of `grouping`, left in shared `groups` with its reciprocal (each group's is taken once, not
// once per value). Every thread of the CTA must call it.
template <bool FINE, int kWords, int kPer, typename Magnitude>
__device__ __forceinline__ float block_scales(Magnitude magnitude, const Grouping& grouping, Divisor* groups, float* scratch) {
  if constexpr (!FINE) {
    float mx = 0.f;
#pragma unroll
    for (int j = 0; j < kPer; j++) mx = fmax_nan(mx, magnitude(j));
    return int8_scale(block_max(mx, scratch));
  } else {
    // The maxima first, as f32 bits in each group's `d` (magnitudes are ≥ 0, so their unsigned order is the float's).
    unsigned* bits = reinterpret_cast<unsigned*>(groups);
    constexpr int kStride = sizeof(Divisor) / sizeof(unsigned);
    for (int i = threadIdx.x; i < grouping.count(); i += kThreads) bits[i * kStride] = 0u;
    __syncthreads();
    // Where a row is 2^n quads, the lanes of a warp on one row take their max with one warp reduction (of the f32
    // bits) per row the warp holds, and one of them the shared max.
    constexpr int kLanes = (kWords & (kWords - 1)) == 0 ? (kWords < 32 ? kWords : 32) : 1;
    const int lane = threadIdx.x & 31, rowOfLane = lane / kLanes;
#pragma unroll
    for (int j = 0; j < kPer; j++) {
      unsigned v = __float_as_uint(magnitude(j));
      if constexpr (kLanes > 1) {
        unsigned mine = v;
#pragma unroll
        for (int r = 0; r < 32 / kLanes; r++) {
          const unsigned m = __reduce_max_sync(0xffffffffu, rowOfLane == r ? v : 0u);
          if (rowOfLane == r) mine = m;
        }
        v = mine;
      }
      if ((lane & (kLanes - 1)) == 0) atomicMax(&bits[grouping.of((threadIdx.x + j * kThreads) / kWords) * kStride], v);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < grouping.count(); i += kThreads) groups[i] = divisor(int8_scale(__uint_as_float(bits[i * kStride])));
    __syncthreads();
    return 1.f;
  }
}

// Stores what block_scales found: the block's scale (thread 0), or (FINE) each group's, group i at scales[first + i]
// (a block's groups have consecutive slots); `negate` stores the first one negated (flagWideV).
template <bool FINE>
__device__ __forceinline__ void store_scales(float* scales, int64_t first, float scale, const Divisor* groups, const Grouping& grouping,
                                             bool negate = false) {
  if constexpr (!FINE) {
    if (threadIdx.x == 0) scales[first] = negate ? -scale : scale;
  } else {
    for (int i = threadIdx.x; i < grouping.count(); i += kThreads) scales[first + i] = i == 0 && negate ? -groups[i].d : groups[i].d;
  }
}

// Each CTA keeps its block in registers: every element is loaded once, and all of a thread's loads are issued
// before the first use (memory-level parallelism), then the block max, then quantization from registers.
template <int DP, bool PACKED, bool HOPPER, bool FINE>
__device__ __forceinline__ void quantize_q(const Geometry& g, const TensorRef& q, const TensorRef& k, const Workspace& w, float fold, float smScale,
                                           bool lse, bool smooth, int chunks, bool summed, int bx, int by, float* scratch,
                                           Divisor* groups, float4* partial, float* meanS) {
  constexpr int kWords = DP / 4, kPer = kQBlock * kWords / kThreads;
  const int s = bx / g.Hq, h = bx % g.Hq;
  const Sequence sq = sequence(g, s);
  const int r0 = by * kQBlock;
  if (r0 >= sq.nq) return;
  const int rows = min(kQBlock, sq.nq - r0);
  const int64_t base = sq.b * q.sb + h * q.sh + int64_t(sq.q0 + r0) * q.sn;

  using P = QuadPlace<DP>;
  Quad<PACKED> x[kPer];
#pragma unroll
  for (int j = 0; j < kPer; j++) x[j] = load_quad<PACKED>(q, P::offset(q, base, j), P::channel(j), g.D, P::row(j) < rows && P::channel(j) < g.D);
  auto folded = [&](int j) {
    const float4 f = widen(x[j], q.dtype);
    return make_float4(f.x * fold, f.y * fold, f.z * fold, f.w * fold);
  };
  // The largest |x·fold| is the largest |x| times |fold|, rounded once (rounding is monotonic): the magnitudes are
  // taken on the inputs as loaded, packed ones on their bits.
  const float absFold = fabsf(fold);
  const Grouping grouping{g.qShift, kQBlockShift, false};
  float scale;
  if constexpr (PACKED && !FINE) {
    scale = int8_scale(block_max(packed_absmax(x, q.dtype) * absFold, scratch));
  } else {
    scale = block_scales<FINE, kWords, kPer>([&](int j) { return quad_absmax(widen(x[j], q.dtype)) * absFold; }, grouping, groups, scratch);
  }
  const Divisor div = divisor(scale);
  // Rows past the sequence and channels past D were loaded as 0 and quantize to 0.
  uint32_t* out = reinterpret_cast<uint32_t*>(w.qi + (int64_t(h) * g.rowsQ + sq.qRow + r0) * DP) + swizzled_word<DP, HOPPER>(threadIdx.x);
  auto store = [&](auto reciprocalTag) {
#pragma unroll
    for (int j = 0; j < kPer; j++)
      out[j * kThreads] = quantize4_word<decltype(reciprocalTag)::value>(folded(j), FINE ? groups[grouping.of(P::row(j))] : div);
  };
  store_quantized<FINE>(div, store);
  store_scales<FINE>(w.qs, q_scale_slot(g, sq, h, r0), scale, groups, grouping);

  if (lse) {
    // Two threads per row, each summing every other channel.
    const int r = threadIdx.x >> 1;
    head_mean<PACKED>(g, k, w, s, h / g.group, chunks, smooth, summed, partial, meanS);
    const float* mean = meanS;
    float dot = 0.f;
    if (r < rows)
      for (int c = threadIdx.x & 1; c < g.D; c += 2) dot += load(q, base + r * q.sn + c * q.sd) * mean[c];
    dot += __shfl_xor_sync(0xffffffffu, dot, 1);
    if ((threadIdx.x & 1) == 0) w.qm[int64_t(h) * g.rowsQ + sq.qRow + r0 + r] = smScale * dot;
  }
}

template <int DP, bool PACKED, bool HOPPER, bool FINE>
__device__ __forceinline__ void quantize_kv(const Geometry& g, const TensorRef& k, const TensorRef& v, const Workspace& w,
                                            bool smooth, bool convertV, bool flagWideV, int chunks, bool summed, int bx, int by, float* scratch,
                                            Divisor* groups, float4* partial, float* meanS) {
  constexpr int kWords = DP / 4, kPer = kKBlock * kWords / kThreads;
  const int s = bx / g.Hkv, h = bx % g.Hkv;
  const Sequence sq = sequence(g, s);
  const int r0 = by * kKBlock;
  if (r0 >= round_up(sq.nk, kKRowPad)) return;
  const int rows = max(0, min(kKBlock, sq.nk - r0));  // 0: a padding block, written as zeros
  const int64_t kbase = sq.b * k.sb + h * k.sh + int64_t(sq.k0 + r0) * k.sn;
  const int64_t vbase = sq.b * v.sb + h * v.sh + int64_t(sq.k0 + r0) * v.sn;
  if (rows > 0) head_mean<PACKED>(g, k, w, s, h, chunks, smooth, summed, partial, meanS);
  const float* mean = meanS;

  // K as in quantize_q; V (unless the attention kernel reads the caller's V itself) as f16 rows of DP channels.
  // All loads are issued before the first use.
  using P = QuadPlace<DP>;
  Quad<PACKED> x[kPer], y[kPer];
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const bool in = P::row(j) < rows && P::channel(j) < g.D;
    x[j] = load_quad<PACKED>(k, P::offset(k, kbase, j), P::channel(j), g.D, in);
    if (convertV) y[j] = load_quad<PACKED>(v, P::offset(v, vbase, j), P::channel(j), g.D, in);
  }
  // Padding stays 0 (not −mean) so it quantizes to 0; mean is 0 past D. Where a thread's quads all lie in the same 4
  // channels, their mean is read from shared memory once.
  const int cFixed = P::channel(0);
  const float4 mFixed = P::kFixed ? make_float4(mean[cFixed], mean[cFixed + 1], mean[cFixed + 2], mean[cFixed + 3])
                                  : make_float4(0.f, 0.f, 0.f, 0.f);
  auto centred = [&](int j) {
    const int c0 = P::channel(j);
    const float4 f = widen(x[j], k.dtype);
    const float4 m = P::kFixed ? mFixed : make_float4(mean[c0], mean[c0 + 1], mean[c0 + 2], mean[c0 + 3]);
    return P::row(j) < rows ? make_float4(f.x - m.x, f.y - m.y, f.z - m.z, f.w - m.w) : f;
  };
  const Grouping grouping{g.kShift, kKBlockShift, g.kThread};
  const float scale = block_scales<FINE, kWords, kPer>([&](int j) { return quad_absmax(centred(j)); }, grouping, groups, scratch);
  const Divisor div = divisor(scale);

  const int64_t row0 = int64_t(h) * g.rowsK + sq.kRow + r0;
  uint32_t* kout = reinterpret_cast<uint32_t*>(w.ki + row0 * DP) + swizzled_word<DP, HOPPER>(threadIdx.x);
  ushort4* vout = reinterpret_cast<ushort4*>(w.vh + row0 * DP) + threadIdx.x;
  bool wide = false;
  auto store = [&](auto reciprocalTag) {
#pragma unroll
    for (int j = 0; j < kPer; j++) {
      kout[j * kThreads] = quantize4_word<decltype(reciprocalTag)::value>(centred(j), FINE ? groups[grouping.of(P::row(j))] : div);
      if (convertV) {
        const ushort4 f = to_f16x4(y[j], v.dtype);
        vout[j * kThreads] = f;
        if (flagWideV) wide |= past_f16_block_limit(f);
      }
    }
  };
  store_quantized<FINE>(div, store);
  // flagWideV (the same in every thread of the CTA, and only with convertV) costs one barrier.
  const bool negate = flagWideV && __syncthreads_or(wide);
  if (rows > 0) store_scales<FINE>(w.ks, k_scale_slot(g, sq, h, r0), scale, groups, grouping, negate);
}

// One kernel, three roles, by CTA index: [sumCtas chunk sums of K][qCtas Q blocks][K/V blocks]. The first launch
// runs the chunk sums (and Q, which needs no mean unless the LSE is asked for); the second the K/V blocks (and Q
// with the LSE). When K is one chunk (or not smoothed) there is one launch and each CTA that needs the mean sums
// K itself: the per-call cost of small problems is mostly launches.
// Each launch is its own instantiation (PHASE), so each gets the registers its roles need; a packed block held in
// registers must not spill to local memory (at 64 registers for every role the spills, not DRAM, bounded the
// pre-pass), and as many CTAs as fit without spilling keep loads in flight: the first of two launches (sums, Q
// without the LSE) 4 per SM up to D = 128; the others, which hold K and V, 4 at D = 64 and 3 at D = 128.
enum Phase { kOneLaunch, kSums, kQuantize };
struct Roles {
  int sumCtas, qCtas;  // CTA counts fit a grid's x dimension (under 2^31)
  int chunks, chunkTokens, qBlocks, kBlocks;
  bool convertV;  // V to f16 rows; false when the attention kernel reads the caller's V itself
  bool flagWideV;  // with convertV: a block's first sK negated where its V is past kF16BlockVLimit
  Phase phase;
};

template <int DP, bool PACKED, Phase PHASE>
constexpr int min_ctas_per_sm() {
  return !PACKED ? 1 : PHASE == kSums ? (DP <= 128 ? 4 : 2) : DP <= 64 ? 4 : DP <= 128 ? 3 : 2;
}

template <int DP, bool PACKED, bool HOPPER, Phase PHASE, bool FINE>
__global__ void __launch_bounds__(kThreads, min_ctas_per_sm<DP, PACKED, PHASE>()) quantize_kernel(Geometry g, TensorRef q, TensorRef k, TensorRef v, Workspace w,
                                                             float fold, float smScale, bool lse, bool smooth, Roles roles) {
  __shared__ float scratch[kThreads / 32];
  __shared__ Divisor groups[kQBlock];  // per-group scales at a finer granularity (block_scales)
  __shared__ float4 partial[kThreads];
  __shared__ float meanS[256];
  constexpr bool kSummed = PHASE == kOneLaunch;
  // With the Hopper layout the pre-pass is launched as a programmatic dependent: the previous kernel (the last call's
  // attention, still reading the workspace; or whatever wrote q, k, v) must be done before anything is read or written.
  dependent_wait();
  dependent_release();
  int b = int(blockIdx.x);
  if constexpr (PHASE == kSums) {
    if (b < roles.sumCtas) {
      ksum_chunk<PACKED>(g, k, w, roles.chunkTokens, roles.chunks, b / roles.chunks, b % roles.chunks, partial, meanS);
      return;
    }
    b -= roles.sumCtas;
  }
  if (b < roles.qCtas) {
    // The LSE needs the mean: never in the first of two launches.
    quantize_q<DP, PACKED, HOPPER, FINE>(g, q, k, w, fold, smScale, PHASE != kSums && lse, smooth, roles.chunks, kSummed, b / roles.qBlocks,
                                   b % roles.qBlocks, scratch, groups, partial, meanS);
    return;
  }
  b -= roles.qCtas;
  if constexpr (PHASE != kSums)
    quantize_kv<DP, PACKED, HOPPER, FINE>(g, k, v, w, smooth, roles.convertV, roles.flagWideV, roles.chunks, kSummed, b / roles.kBlocks, b % roles.kBlocks,
                                    scratch, groups, partial, meanS);
}

template <int DP, bool PACKED, bool HOPPER>
void launch_quantize(unsigned ctas, const Geometry& g, const TensorRef& q, const TensorRef& k, const TensorRef& v, const Workspace& w,
                     float fold, float smScale, bool lse, bool smooth, const Roles& roles, cudaStream_t stream) {
  // The Hopper layout means compute capability 9.0, where launches can overlap the previous kernel's tail.
  auto go = [&](auto kernel) { return launch_dependent(kernel, dim3(ctas), dim3(kThreads), 0, stream, HOPPER, g, q, k, v, w, fold, smScale, lse, smooth, roles); };
  // The default granularity has its own instantiations, so the finer ones' registers never touch it.
  const bool fine = fine_granularity(g);
  switch (roles.phase) {
    case kOneLaunch: fine ? go(quantize_kernel<DP, PACKED, HOPPER, kOneLaunch, true>) : go(quantize_kernel<DP, PACKED, HOPPER, kOneLaunch, false>); break;
    case kSums: fine ? go(quantize_kernel<DP, PACKED, HOPPER, kSums, true>) : go(quantize_kernel<DP, PACKED, HOPPER, kSums, false>); break;
    case kQuantize: fine ? go(quantize_kernel<DP, PACKED, HOPPER, kQuantize, true>) : go(quantize_kernel<DP, PACKED, HOPPER, kQuantize, false>); break;
  }
}

template <int DP>
void launch_quantize_dp(bool packed, bool hopper, unsigned ctas, const Geometry& g, const TensorRef& q, const TensorRef& k,
                        const TensorRef& v, const Workspace& w, float fold, float smScale, bool lse, bool smooth, const Roles& roles,
                        cudaStream_t stream) {
  if constexpr (hopper_head_dim(DP)) {
    if (hopper) {
      if (packed) launch_quantize<DP, true, true>(ctas, g, q, k, v, w, fold, smScale, lse, smooth, roles, stream);
      else launch_quantize<DP, false, true>(ctas, g, q, k, v, w, fold, smScale, lse, smooth, roles, stream);
      return;
    }
  }
  if (packed) launch_quantize<DP, true, false>(ctas, g, q, k, v, w, fold, smScale, lse, smooth, roles, stream);
  else launch_quantize<DP, false, false>(ctas, g, q, k, v, w, fold, smScale, lse, smooth, roles, stream);
}

void launch_roles(const Geometry& g, const TensorRef& q, const TensorRef& k, const TensorRef& v, const Workspace& w, float fold,
                  float smScale, bool lse, bool smooth, bool hopper, const Roles& roles, int64_t kvCtas, cudaStream_t stream) {
  const int64_t ctas = int64_t(roles.sumCtas) + roles.qCtas + kvCtas;
  if (ctas <= 0) return;
  // Packed loads need 16-bit inputs whose channel quads are aligned vectors in all three tensors.
  const bool packed = q.dtype != kDtypeF32 && q.vec4 && k.vec4 && v.vec4;
  const unsigned n = static_cast<unsigned>(ctas);
  switch (g.DP) {
    case 64: launch_quantize_dp<64>(packed, hopper, n, g, q, k, v, w, fold, smScale, lse, smooth, roles, stream); break;
    case 96: launch_quantize_dp<96>(packed, hopper, n, g, q, k, v, w, fold, smScale, lse, smooth, roles, stream); break;
    case 128: launch_quantize_dp<128>(packed, hopper, n, g, q, k, v, w, fold, smScale, lse, smooth, roles, stream); break;
    default: launch_quantize_dp<256>(packed, hopper, n, g, q, k, v, w, fold, smScale, lse, smooth, roles, stream); break;
  }
}

}  // namespace

cudaError_t launch_prepass(const Geometry& g, const TensorRef& q, const TensorRef& k, const TensorRef& v,
                           const Workspace& w, float smScale, bool smoothK, bool lse, bool hopper, bool convertV,
                           bool flagWideV, cudaStream_t stream) {
  const float fold = log2e_fold(smScale);
  Roles r{};
  r.convertV = convertV;
  r.flagWideV = convertV && flagWideV;
  r.chunks = kmean_chunks(g.maxK);
  r.chunkTokens = kmean_chunk_tokens(g.maxK);
  r.qBlocks = int(ceil_div(g.maxQ, kQBlock));
  r.kBlocks = int(round_up(g.maxK, kKRowPad) / kKBlock);
  if (r.qBlocks <= 0 || r.kBlocks <= 0) return cudaGetLastError();
  const int64_t qCtas = int64_t(g.S) * g.Hq * r.qBlocks, kvCtas = int64_t(g.S) * g.Hkv * r.kBlocks;
  const int64_t sumCtas = smoothK ? int64_t(g.S) * g.Hkv * r.chunks : 0;
  if (sumCtas + qCtas + kvCtas >= (int64_t(1) << 31)) return cudaErrorInvalidConfiguration;
  if (!smoothK || r.chunks == 1) {
    Roles one = r;
    one.sumCtas = 0;
    one.qCtas = int(qCtas);
    one.phase = kOneLaunch;
    launch_roles(g, q, k, v, w, fold, smScale, lse, smoothK, hopper, one, kvCtas, stream);
    return cudaGetLastError();
  }
  Roles first = r, second = r;
  first.sumCtas = int(sumCtas);
  first.qCtas = lse ? 0 : int(qCtas);
  first.phase = kSums;
  second.sumCtas = 0;
  second.qCtas = lse ? int(qCtas) : 0;
  second.phase = kQuantize;
  launch_roles(g, q, k, v, w, fold, smScale, lse, smoothK, hopper, first, 0, stream);
  launch_roles(g, q, k, v, w, fold, smScale, lse, smoothK, hopper, second, kvCtas, stream);
  return cudaGetLastError();
}

}  // namespace sa
