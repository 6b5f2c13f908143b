// attention_sm80.cu — SageAttention's main kernel for sm80+ (docs/DESIGN.md §2 steps 3–7), on the pre-pass's
// workspace.
//
// One CTA = one 128-query block (= one Q quantization block, one scale sQ) of one (sequence, query head); it walks
// the K/V tiles of 64 keys (= one K quantization block, one scale sK) of the kv head h / group. With a finer
// granularity (FINE) each row has its sQ and each 16 keys their sK (16 keys under one sK at "warp"; at "thread" the
// sK of the lane's group in each 64-key span, k_thread_group):
//   S  = (Qi · Kiᵀ) · sQ·sK       INT8 mma.sync m16n8k32, exact int32 sums; logits in base-2 units
//   online softmax in exp2        running max m and (per-lane partial) sum l per row
//   O += P·V                      FP16 mma.sync m16n8k16; within one K tile summed in f16 (or f32 when PV_F32),
//                                 then added to the f32 accumulator rescaled by exp2(m_old − m_new); a tile the
//                                 pre-pass flagged (some |V| past kF16BlockVLimit) sums P/64 in f16, then × 64
// Each warp owns 16·kMTiles query rows (heuristics.h); its lanes hold mma fragments: lane (g = lane/4, t = lane%4)
// owns rows g and g+8 of each m16 tile and columns 2t, 2t+1 of each n8 tile. Q fragments stay in registers for the
// whole K loop or are reloaded per tile, and K/V tiles go through a 2- or 3-stage cp.async ring (heuristics.h).
// Shared rows are padded by 16 bytes so the 8 rows an ldmatrix reads fall in 8 different bank groups.
// Tile sizes: tile_size.h (fixed by the algorithm's blocks); rows per warp: heuristics.h.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "epilogue.cuh"
#include "heuristics.h"
#include "kernels.h"
#include "mma.cuh"
#include <type_traits>

namespace sa {
namespace {

// Shared-memory geometry of one padded head dim and pipeline depth. With two stages and Q fragments in registers,
// Q shares the second K/V stage (it moves to registers before that stage is first filled); otherwise it has its own
// region after the stages.
template <int DP, bool QREG, int STAGES>
struct SmemLayout {
  static constexpr int kRowI8 = DP + 16;                  // bytes per int8 row (Q, K)
  static constexpr int kRowF16 = 2 * DP + 16;             // bytes per f16 row (V)
  static constexpr int kK = kKBlock * kRowI8;
  static constexpr int kV = kKBlock * kRowF16;
  static constexpr int kStage = kK + kV;
  static constexpr int kQ = kQBlock * kRowI8;
  static constexpr bool kAliasQ = QREG && STAGES == 2;
  static constexpr int kQOffset = kAliasQ ? kStage : STAGES * kStage;
  static constexpr int kBytes = kAliasQ ? (kStage > kQ ? 2 * kStage : kStage + kQ) : STAGES * kStage + kQ;
};

// Copies rows × (bytes per row) from contiguous global memory into padded shared rows, 16 bytes per cp.async.
template <int Rows, int RowBytes, int SmemRow, int Threads>
__device__ __forceinline__ void load_tile(char* smem, const char* gmem, int tid) {
  constexpr int kChunks = RowBytes / 16;
#pragma unroll
  for (int i = tid; i < Rows * kChunks; i += Threads) {
    const int r = i / kChunks, c = i % kChunks;
    cp_async_16(smem + r * SmemRow + c * 16, gmem + int64_t(r) * RowBytes + c * 16);
  }
}

template <int DP, bool PV_F32, int MT, bool QREG, int STAGES, bool FINE>
__global__ void __launch_bounds__(32 * 8 / MT, MT)
    attention_kernel(Geometry g, Workspace w, TensorRef o, float* lse, bool causal) {
  using T = AttentionTraits<DP, MT>;
  using L = SmemLayout<DP, QREG, STAGES>;
  constexpr int KSTEPS = DP / 32;   // int8 k-steps of Q·Kᵀ
  constexpr int DTILES = DP / 8;    // n8 tiles of O
  extern __shared__ __align__(128) char smem[];

  const int qb = causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x;  // heaviest causal blocks first
  const int s = blockIdx.y / g.Hq, h = blockIdx.y % g.Hq, hk = h / g.group;
  const Sequence sq = sequence(g, s);
  const int r0 = qb * kQBlock;
  if (r0 >= sq.nq) return;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
  const int warpRow = warp * 16 * MT;

  // Keys this CTA may see: all, or up to its last row's causal limit (bottom-right alignment).
  const int shift = sq.nk - sq.nq;
  const int lastRow = min(sq.nq, r0 + kQBlock) - 1;
  const int keyEnd = causal ? max(0, min(sq.nk, lastRow + shift + 1)) : sq.nk;
  const int tiles = int(ceil_div(keyEnd, kKBlock));

  const int8_t* qg = w.qi + (int64_t(h) * g.rowsQ + sq.qRow + r0) * DP;
  const int8_t* kg = w.ki + (int64_t(hk) * g.rowsK + sq.kRow) * DP;
  const uint16_t* vg = w.vh + (int64_t(hk) * g.rowsK + sq.kRow) * DP;
  // sQ of the block, or (FINE) of each row this thread holds (rows past the sequence take the last row's; nothing
  // stores them). The default spells its block's slot out: through q_scale_slot's shifts ptxas gave the f32 D = 128
  // kernel 8 bytes of spills.
  constexpr int kQScales = FINE ? MT * 2 : 1;
  float qScale[kQScales];
#pragma unroll
  for (int i = 0; i < kQScales; i++)
    qScale[i] = w.qs[FINE ? q_scale_slot(g, sq, h, min(r0 + warpRow + (i >> 1) * 16 + gq + (i & 1) * 8, sq.nq - 1))
                          : int64_t(h) * g.qSlots + sq.qSlot + qb];
  const float* kScales = w.ks + (FINE ? k_scale_slot(g, sq, hk, 0) : int64_t(hk) * g.kSlots + sq.kSlot);

  auto stage = [&](int i) { return smem + i * L::kStage; };
  auto load_kv = [&](int tile, char* dst) {
    load_tile<kKBlock, DP, L::kRowI8, T::kThreads>(dst, reinterpret_cast<const char*>(kg + int64_t(tile) * kKBlock * DP), tid);
    load_tile<kKBlock, 2 * DP, L::kRowF16, T::kThreads>(dst + L::kK, reinterpret_cast<const char*>(vg + int64_t(tile) * kKBlock * DP), tid);
  };

  // Q and the first K/V tile(s). Two stages: wait for both, move Q to registers, then one tile ahead with two
  // barriers per tile. Three stages: two tiles ahead and one barrier per tile (the stage refilled at iteration i
  // was read at i − 1, which every warp finished before passing iteration i's barrier).
  char* sQ = smem + L::kQOffset;
  load_tile<kQBlock, DP, L::kRowI8, T::kThreads>(sQ, reinterpret_cast<const char*>(qg), tid);
  if (tiles > 0) load_kv(0, stage(0));
  cp_async_commit();
  if constexpr (STAGES == 3) {
    if (tiles > 1) load_kv(1, stage(1));
    cp_async_commit();
  } else {
    cp_async_wait<0>();
    __syncthreads();
  }
  auto q_fragment = [&](uint32_t (&f)[4], int mt, int ks) {
    ldmatrix_x4(f, sQ + (warpRow + mt * 16 + (lane & 15)) * L::kRowI8 + ks * 32 + (lane >> 4) * 16);
  };
  uint32_t qf[QREG ? MT : 1][QREG ? KSTEPS : 1][4];
  auto load_q_fragments = [&]() {
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
      for (int ks = 0; ks < KSTEPS; ks++) q_fragment(qf[QREG ? mt : 0][QREG ? ks : 0], mt, ks);
  };
  if constexpr (QREG && STAGES == 2) {
    load_q_fragments();
    __syncthreads();
  }

  float acc[MT][DTILES][4];
  float rowMax[MT][2], rowSum[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; mt++) {
#pragma unroll
    for (int dt = 0; dt < DTILES; dt++)
#pragma unroll
      for (int i = 0; i < 4; i++) acc[mt][dt][i] = 0.f;
    rowMax[mt][0] = rowMax[mt][1] = -INFINITY;
    rowSum[mt][0] = rowSum[mt][1] = 0.f;
  }

  int current = 0;  // stage holding tile `it`
  for (int it = 0; it < tiles; it++) {
    if constexpr (STAGES == 3) {
      cp_async_wait<1>();  // all but the newest group (tile it + 1) have landed
      __syncthreads();
      if (QREG && it == 0) load_q_fragments();
      if (it + 2 < tiles) load_kv(it + 2, stage(current == 0 ? 2 : current - 1));
      cp_async_commit();
    } else {
      if (it + 1 < tiles) {
        load_kv(it + 1, stage(current ^ 1));
        cp_async_commit();
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
    }
    const char* sk = stage(current);
    const char* sv = sk + L::kK;

    // S = Qi · Kiᵀ for this warp's rows and the tile's 64 keys.
    int32_t si[MT][8][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
      for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int i = 0; i < 4; i++) si[mt][nt][i] = 0;
#pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++) {
      uint32_t qs[QREG ? 1 : MT][4];
      if constexpr (!QREG)
#pragma unroll
        for (int mt = 0; mt < MT; mt++) q_fragment(qs[mt], mt, ks);
#pragma unroll
      for (int np = 0; np < 4; np++) {
        uint32_t b[4];
        const int key = np * 16 + ((lane >> 4) << 3) + (lane & 7);
        ldmatrix_x4(b, sk + key * L::kRowI8 + ks * 32 + ((lane >> 3) & 1) * 16);
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
          const uint32_t(&a)[4] = QREG ? qf[QREG ? mt : 0][QREG ? ks : 0] : qs[QREG ? 0 : mt];
          mma_s8(si[mt][2 * np], a, b[0], b[1]);
          mma_s8(si[mt][2 * np + 1], a, b[2], b[3]);
        }
      }
    }

    // Dequantize, mask, update the running max and sum, and pack P as f16 A fragments (rows g and g+8 of each
    // m-tile: hf = 0, 1; k-step kk covers keys 16kk..16kk+15 = n-tiles 2kk and 2kk+1). Only tiles at the sequence
    // end or on the causal diagonal pay for the mask (EDGE).
    const int k0 = it * kKBlock;
    // The logits' scale sQ·sK, applied in exp2's argument; or (FINE: sQ per row, sK per 16 keys or, at "thread", the
    // lane's sK of the 64-key span, read once for each 16 keys here) applied to the integer logits in place as they
    // are converted to f32 here, so no scale stays live through the softmax (`scale` is then 1). A group past the
    // sequence's end is masked anyway.
    // With f16 sums a tile whose first sK the pre-pass negated holds a V that could overflow them (kF16BlockVLimit):
    // its P is taken as P/64 (exp2 of 6 less, to exp2's own rounding), so its f16 sums stay in range, and the identity
    // that adds them to O is 64s (exact). The sums of P/64 lose precision only below P = 2⁻⁸, where f16 turns
    // subnormal. The flag enters as integer arithmetic, never as a bool: the compiler copied the whole softmax per
    // value of one (NOTES.md).
    const float firstK = kScales[FINE ? k0 >> g.kShift : it];
    const uint32_t wide = PV_F32 ? 0u : __float_as_uint(firstK) >> 31;
    const float pShift = __uint2float_rn(wide * kWideShift);
    const float pScale = __uint_as_float(0x3F800000u + (wide * kWideShift << 23));  // 2^(kWideShift·wide)
    const float scale = FINE ? 1.f : qScale[0] * fabsf(firstK);
    if constexpr (FINE) {
      float kScale[kKBlock / kKRowBlock];
#pragma unroll
      for (int i = 0; i < kKBlock / kKRowBlock; i++)
        kScale[i] = fabsf(i == 0 || k0 + i * kKRowBlock < sq.nk
                              ? kScales[g.kThread ? k_thread_group(k0 + i * kKRowBlock) + tq : (k0 + i * kKRowBlock) >> g.kShift]
                              : kScale[0]);
#pragma unroll
      for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            // The magic-number conversion with the scale in its FMA, as the Hopper kernel does (attention_sm90.cu).
            const float sc = qScale[mt * 2 + e / 2] * kScale[nt / (kKRowBlock / 8)];
            si[mt][nt][e] = __float_as_int(fmaf(__int_as_float(si[mt][nt][e] + 0x4B400000), sc, -12582912.f * sc));
          }
    }
    const bool edge = k0 + kKBlock > sq.nk || (causal && k0 + kKBlock - 1 > r0 + shift);
    uint32_t pf[MT][4][4];
    float alpha[MT][2];
    auto softmax = [&](auto edgeTag) {
      constexpr bool EDGE = decltype(edgeTag)::value;
#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
          const int row = r0 + warpRow + mt * 16 + gq + hf * 8;
          const int limit = causal ? min(sq.nk, row + shift + 1) : sq.nk;
          // int32 → f32 by the magic-number trick (two full-rate ops instead of a quarter-rate I2F): exact, since
          // |Qi·Ki| ≤ 127²·256 < 2²². Logits stay unscaled integers until the one FFMA inside exp2's argument.
          auto raw = [&](int nt, int j) {
            const float x = FINE ? __int_as_float(si[mt][nt][hf * 2 + j]) : __int_as_float(si[mt][nt][hf * 2 + j] + 0x4B400000) - 12582912.f;
            return EDGE && k0 + nt * 8 + 2 * tq + j >= limit ? -INFINITY : x;
          };
          float mraw = -INFINITY;
#pragma unroll
          for (int nt = 0; nt < 8; nt++) mraw = fmaxf(mraw, fmaxf(raw(nt, 0), raw(nt, 1)));
          float mx = fmaxf(rowMax[mt][hf], mraw * scale);
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          // A row that has seen no visible key keeps m = −inf; subtract 0 then so exp2 gives 0, not NaN.
          const float base = mx == -INFINITY ? 0.f : mx;
          alpha[mt][hf] = fast_exp2(rowMax[mt][hf] - base);
          rowMax[mt][hf] = mx;
          float sum = 0.f;
          const float pBase = base + pShift;
          // A row that sees none of the tile's keys takes the scale 1, so their −∞ gives P = 0 even where the tile's
          // scale is NaN (core: only the rows that see the block are NaN). FINE's logits are scaled already.
          const float rowScale = EDGE && !FINE && k0 >= limit ? 1.f : scale;
#pragma unroll
          for (int nt = 0; nt < 8; nt++) {
            const float p0 = fast_exp2(fmaf(raw(nt, 0), rowScale, -pBase)), p1 = fast_exp2(fmaf(raw(nt, 1), rowScale, -pBase));
            sum += p0 + p1;
            pf[mt][nt >> 1][(nt & 1) * 2 + hf] = pack_half2(p0, p1);
          }
          rowSum[mt][hf] = fmaf(rowSum[mt][hf], alpha[mt][hf], sum * pScale);
        }
      }
    };
    if (edge) softmax(std::true_type{});
    else softmax(std::false_type{});
    // Once the running maxima settle (most tiles of a long row) no row of the warp moves: skip the rescale.
    bool moved = false;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) moved |= alpha[mt][0] != 1.f || alpha[mt][1] != 1.f;
    if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
      for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int dt = 0; dt < DTILES; dt++) {
          acc[mt][dt][0] *= alpha[mt][0];
          acc[mt][dt][1] *= alpha[mt][0];
          acc[mt][dt][2] *= alpha[mt][1];
          acc[mt][dt][3] *= alpha[mt][1];
        }
    }

    // O += P · V. V fragments by ldmatrix.trans: matrices (keys 0-7 | 8-15) × (d 0-7 | 8-15) of a 16x16 block.
    const int vKey = (lane & 7) + ((lane >> 3) & 1) * 8;
    // B fragment of an 8x8 identity (rows 2t, 2t+1 of column g): f16 1.0 where the row is g (64.0, f16 2^kWideShift,
    // on a wide tile).
    const uint32_t one = 0x3C00u + (wide * kWideShift << 10);
    const uint32_t eye = (2 * tq == gq ? one : 0u) | (2 * tq + 1 == gq ? one << 16 : 0u);
    const int vCol = (lane >> 4) * 8;
    if constexpr (PV_F32) {
#pragma unroll
      for (int kk = 0; kk < 4; kk++)
#pragma unroll
        for (int dp = 0; dp < DP / 16; dp++) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, sv + (kk * 16 + vKey) * L::kRowF16 + (dp * 16 + vCol) * 2);
#pragma unroll
          for (int mt = 0; mt < MT; mt++) {
            mma_f16_f32acc(acc[mt][2 * dp], pf[mt][kk], b[0], b[1]);
            mma_f16_f32acc(acc[mt][2 * dp + 1], pf[mt][kk], b[2], b[3]);
          }
        }
    } else {
      // f16 within the tile, 32 output columns at a time (keeps the f16 partials to 8 registers per m-tile).
#pragma unroll
      for (int dc = 0; dc < DP / 32; dc++) {
        uint32_t part[MT][4][2];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
          for (int j = 0; j < 4; j++) part[mt][j][0] = part[mt][j][1] = 0u;
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
#pragma unroll
          for (int dp = 0; dp < 2; dp++) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, sv + (kk * 16 + vKey) * L::kRowF16 + (dc * 32 + dp * 16 + vCol) * 2);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
              mma_f16_f16acc(part[mt][2 * dp], pf[mt][kk], b[0], b[1]);
              mma_f16_f16acc(part[mt][2 * dp + 1], pf[mt][kk], b[2], b[3]);
            }
          }
        // acc += part in f32 by one more mma against an identity: two adjacent f16 C fragments (16x8 each) are
        // exactly one 16x16 A fragment, and [I;0] / [0;I] pick its halves. 2 tensor ops replace 8 conversions
        // and 8 FADDs per 16 columns; the sum is the same (x·1 + zeros is exact, then one f32 rounding).
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
          for (int jp = 0; jp < 2; jp++) {
            const uint32_t a[4] = {part[mt][2 * jp][0], part[mt][2 * jp][1], part[mt][2 * jp + 1][0], part[mt][2 * jp + 1][1]};
            mma_f16_f32acc(acc[mt][dc * 4 + 2 * jp], a, eye, 0u);
            mma_f16_f32acc(acc[mt][dc * 4 + 2 * jp + 1], a, 0u, eye);
          }
      }
    }
    if constexpr (STAGES == 2) __syncthreads();  // every warp is done with this stage before it is refilled
    current = current + 1 == STAGES ? 0 : current + 1;
  }

  // O = acc / l, written in o's dtype and strides; the LSE restores the smoothing constant smScale·q·mean(K).
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
      float l = rowSum[mt][hf];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int row = r0 + warpRow + mt * 16 + gq + hf * 8;
      if (row >= sq.nq) continue;
      const float inv = row_inverse(l);
      const int64_t base = sq.b * o.sb + h * o.sh + int64_t(sq.q0 + row) * o.sn;
#pragma unroll
      for (int dt = 0; dt < DTILES; dt++)
#pragma unroll
        for (int j = 0; j < 2; j++) {
          const int d = dt * 8 + 2 * tq + j;
          if (d < g.D) store_out(o, base + d * o.sd, acc[mt][dt][hf * 2 + j] * inv);
        }
      if (lse != nullptr && tq == 0) {
        const float qm = w.qm[int64_t(h) * g.rowsQ + sq.qRow + row];
        const float value = row_lse(rowMax[mt][hf], l, qm);
        lse[(int64_t(sq.b) * g.Hq + h) * g.Nq + sq.q0 + row] = value;
      }
    }
}

template <int DP, bool PV_F32, int MT, bool QREG, int STAGES, bool FINE>
cudaError_t launch(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal, cudaStream_t stream) {
  constexpr int smem = SmemLayout<DP, QREG, STAGES>::kBytes;
  auto kernel = attention_kernel<DP, PV_F32, MT, QREG, STAGES, FINE>;
  static bool configured = false;  // the attribute is per function; setting it twice is harmless
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(g.maxQ, kQBlock)), static_cast<unsigned>(g.S * g.Hq));
  if (grid.x == 0) return cudaSuccess;
  kernel<<<grid, AttentionTraits<DP, MT>::kThreads, smem, stream>>>(g, w, o, lse, causal);
  return cudaGetLastError();
}

template <int DP>
cudaError_t launch_dp(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal, bool pvF32, cudaStream_t stream) {
  using H = Heuristics<DP>;
  // The default granularity has its own instantiation, so the finer ones' extra registers never touch it.
  if (fine_granularity(g))
    return pvF32 ? launch<DP, true, H::kMTiles, H::kQInRegisters, H::kStages, true>(g, w, o, lse, causal, stream)
                 : launch<DP, false, H::kMTiles, H::kQInRegisters, H::kStages, true>(g, w, o, lse, causal, stream);
  return pvF32 ? launch<DP, true, H::kMTiles, H::kQInRegisters, H::kStages, false>(g, w, o, lse, causal, stream)
               : launch<DP, false, H::kMTiles, H::kQInRegisters, H::kStages, false>(g, w, o, lse, causal, stream);
}

}  // namespace

int attention_smem_bytes(int DP) {
  switch (DP) {
    case 64: return SmemLayout<64, Heuristics<64>::kQInRegisters, Heuristics<64>::kStages>::kBytes;
    case 96: return SmemLayout<96, Heuristics<96>::kQInRegisters, Heuristics<96>::kStages>::kBytes;
    case 128: return SmemLayout<128, Heuristics<128>::kQInRegisters, Heuristics<128>::kStages>::kBytes;
    default: return SmemLayout<256, Heuristics<256>::kQInRegisters, Heuristics<256>::kStages>::kBytes;
  }
}

cudaError_t launch_attention(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal,
                             bool pvF32, cudaStream_t stream) {
  switch (g.DP) {
    case 64: return launch_dp<64>(g, w, o, lse, causal, pvF32, stream);
    case 96: return launch_dp<96>(g, w, o, lse, causal, pvF32, stream);
    case 128: return launch_dp<128>(g, w, o, lse, causal, pvF32, stream);
    case 256: return launch_dp<256>(g, w, o, lse, causal, pvF32, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sa
