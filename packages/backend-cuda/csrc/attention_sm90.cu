// attention_sm90.cu — SageAttention's main kernel for Hopper (sm_90a, head dims 64 and 128), DESIGN §2 steps 3–7,
// on the pre-pass's Hopper layout (hopper_layout.h).
//
// One CTA = NWG warpgroups of 64 query rows each (a warpgroup's rows lie in one Q quantization block: one sQ) of one
// (sequence, query head), walking K/V tiles of 128 keys (two K quantization blocks, two scales sK):
//   S  = Qi · Kiᵀ         wgmma s8 m64n128k32, both operands from shared memory, exact int32 sums
//   online softmax        in exp2, the int32 logits scaled by sQ·sK inside exp2's argument
//   O += P·V              wgmma f16 m64nDk16, P from registers (the S accumulator layout is the A fragment layout),
//                         V transposed in shared memory; f16 sums within each 64-key block, then f32 (or f32 only)
// Loads: thread 0 issues one bulk copy per operand tile (the pre-pass stored them in wgmma's swizzled order) into a
// ring of kStages stages; a `full` mbarrier per stage counts the bytes in, an `empty` one the 8 warps done with it.
// The refill of a stage is issued while the tensor cores run the next tile's Q·Kᵀ, so no warpgroup waits on memory
// in the steady state, and the warpgroups drift apart by up to a tile: one's softmax overlaps another's matrix work.
// Lane ownership: warp w of a warpgroup holds rows 16w + lane/4 and +8, and columns 8j + 2·(lane%4) + {0, 1}.
// Knobs (measured on NVIDIA H200, B4 H32 N16384: see NOTES.md):
//   kStages  3         K/V ring depth in 128-key units (48 KB a stage at D = 128; 4: no change)
//   BN128    128       keys per tile at D = 128; 64 (S in 32 registers, three warpgroups) measured the same
//   NWG      2 / 3     warpgroups per CTA at D = 128 / 64 (registers: 214 per thread at D = 128 allow only two;
//                      at D = 64 the softmax, not the tensor cores, is the limit, and a third warpgroup hides more of it)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <type_traits>
#include "hopper.cuh"
#include "hopper_layout.h"
#include "epilogue.cuh"
#include "kernels.h"

namespace sa {
namespace {

// Tuning builds may override the knobs: -DSA_SM90_STAGES=4, -DSA_SM90_WG64=2, -DSA_SM90_BN128=64.
#ifndef SA_SM90_STAGES
#define SA_SM90_STAGES 3
#endif
#ifndef SA_SM90_WG64
#define SA_SM90_WG64 3
#endif
#ifndef SA_SM90_BN128
#define SA_SM90_BN128 128
#endif
constexpr int kStages = SA_SM90_STAGES;
// Keys per K/V tile: 128 (two K quantization blocks), or 64 at D = 128 so that S fits three warpgroups' registers.
template <int DP>
constexpr int tile_keys() { return DP == 128 ? SA_SM90_BN128 : kHopperKeys; }
template <int DP>
constexpr int warpgroups() { return DP == 64 ? SA_SM90_WG64 : tile_keys<DP>() == 64 ? 3 : 2; }

template <int DP>
struct Smem {
  static constexpr int kRows = 64 * warpgroups<DP>();  // query rows per CTA
  static constexpr int kQ = kRows * DP;    // int8 [kRows][DP]
  static constexpr int kBN = tile_keys<DP>();
  static constexpr int kK = kBN * DP;      // int8 [kBN keys][DP]
  static constexpr int kVBlock = DP * 128; // f16 [DP channels][64 keys]
  static constexpr int kV = kBN / 64 * kVBlock;
  static constexpr int kStage = kK + kV;
  static constexpr int kStages = ::sa::kStages * (kHopperKeys / kBN);  // the same bytes in flight for either tile
  static constexpr int kBarriers = kQ + kStages * kStage;  // 1 + 2·kStages mbarriers
  static constexpr int kBytes = kBarriers + 8 * (1 + 2 * kStages) + 1024;  // + slack to align the base to 1024
};

template <int DP, bool PV_F32>
__global__ void __launch_bounds__(128 * warpgroups<DP>(), 1)
    attention_sm90_kernel(Geometry g, Workspace w, TensorRef o, float* lse, bool causal) {
  using L = Smem<DP>;
  constexpr int kWarps = 4 * warpgroups<DP>();
  constexpr int kBN = L::kBN, kBlocks = kBN / kKBlock;  // K quantization blocks (scales sK) per tile
  constexpr int kChunks = kBN / 8;                      // n8 chunks of S per row pair
  constexpr int ONUM = DP / 2;       // f32 accumulators of O per thread (64 rows × DP over 128 threads)
  extern __shared__ char smemRaw[];
  char* smem = smemRaw + ((1024 - (smem_addr(smemRaw) & 1023)) & 1023);  // swizzle atoms need 1024-byte alignment
  uint64_t* qFull = reinterpret_cast<uint64_t*>(smem + L::kBarriers);
  uint64_t* full = qFull + 1;
  uint64_t* empty = full + L::kStages;
  auto stageK = [&](int i) { return smem + L::kQ + i * L::kStage; };
  auto stageV = [&](int i) { return smem + L::kQ + i * L::kStage + L::kK; };

  const int qb = causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x;  // heaviest causal blocks first
  const int s = blockIdx.y / g.Hq, h = blockIdx.y % g.Hq, hk = h / g.group;
  const Sequence sq = sequence(g, s);
  const int r0 = qb * L::kRows;
  if (r0 >= sq.nq) return;
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, gq = lane >> 2, tq = lane & 3;

  const int shift = sq.nk - sq.nq;
  const int lastRow = min(sq.nq, r0 + L::kRows) - 1;
  const int keyEnd = causal ? max(0, min(sq.nk, lastRow + shift + 1)) : sq.nk;
  const int tiles = int(ceil_div(keyEnd, kBN));

  const char* qg = reinterpret_cast<const char*>(w.qi + (int64_t(h) * g.rowsQ + sq.qRow + r0) * DP);
  const char* kg = reinterpret_cast<const char*>(w.ki + (int64_t(hk) * g.rowsK + sq.kRow) * DP);
  const char* vg = reinterpret_cast<const char*>(w.vh + (int64_t(hk) * g.rowsK + sq.kRow) * DP);
  const int wgRow = r0 + wg * 64;  // first query row of this warpgroup
  // A warpgroup past the sequence's last Q block computes on whatever is in shared memory and stores nothing.
  const float qScale = w.qs[int64_t(h) * g.qSlots + sq.qSlot + min(wgRow, sq.nq - 1) / kQBlock];
  const float* kScales = w.ks + int64_t(hk) * g.kSlots + sq.kSlot;

  auto load_tile = [&](int tile, int st) {
    mbar_expect_bytes(&full[st], L::kStage);
    bulk_copy(stageK(st), kg + int64_t(tile) * kBN * DP, L::kK, &full[st]);
    bulk_copy(stageV(st), vg + int64_t(tile) * kBN * DP * 2, L::kV, &full[st]);
  };
  if (tid == 0) {
    mbar_init(qFull, 1);
    for (int i = 0; i < L::kStages; i++) {
      mbar_init(&full[i], 1);
      mbar_init(&empty[i], kWarps);
    }
    mbar_fence_init();
  }
  __syncthreads();
  if (tid == 0) {
    // Q rows exist up to the sequence's 128-row padding: copy no further.
    const uint32_t qBytes = uint32_t(min(int64_t(L::kRows), round_up(sq.nq, kQBlock) - r0)) * DP;
    mbar_expect_bytes(qFull, qBytes);
    bulk_copy(smem, qg, qBytes, qFull);
    for (int i = 0; i < L::kStages && i < tiles; i++) load_tile(i, i);
  }

  float acc[ONUM];
#pragma unroll
  for (int i = 0; i < ONUM; i++) acc[i] = 0.f;
  float rowMax[2] = {-INFINITY, -INFINITY}, rowSum[2] = {0.f, 0.f};
  const uint64_t qDesc = smem_desc<DP>(smem + wg * 64 * DP);
  mbar_wait(qFull, 0);

  for (int it = 0; it < tiles; it++) {
    const int st = it % L::kStages;
    mbar_wait(&full[st], (it / L::kStages) & 1);

    // S = Qi · Kiᵀ: DP/32 k-steps of 32 bytes (the descriptor's start address moves 2 × 16 bytes each).
    int32_t si[kBN / 2];
    const uint64_t kDesc = smem_desc<DP>(stageK(st));
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < DP / 32; ks++) {
      if constexpr (kBN == 128) wgmma_s8_m64n128k32(si, qDesc + 2 * ks, kDesc + 2 * ks, ks);
      else wgmma_s8_m64n64k32(si, qDesc + 2 * ks, kDesc + 2 * ks, ks);
    }
    wgmma_commit();
    // Refill the stage the previous tile used, once all 8 warps are done with it.
    if (tid == 0 && it >= 1 && it - 1 + L::kStages < tiles) {
      const int prev = (it - 1) % L::kStages;
      mbar_wait(&empty[prev], ((it - 1) / L::kStages) & 1);
      load_tile(it - 1 + L::kStages, prev);
    }
    wgmma_wait<0>();
    pin(si);

    // Dequantize, mask, online softmax; P packed as f16 A fragments: k-step kk covers keys 16kk..16kk+15, that is
    // n8 chunks 2kk and 2kk+1, rows g (hf = 0) and g + 8 (hf = 1).
    const int k0 = it * kBN;
    const float sc0 = qScale * kScales[kBlocks * it];
    // The second block's scale; past the sequence's end it is masked anyway.
    const float sc1 = kBlocks == 2 && k0 + kKBlock < sq.nk ? qScale * kScales[kBlocks * it + 1] : sc0;
    const bool edge = k0 + kBN > sq.nk || (causal && k0 + kBN - 1 > wgRow + shift);
    uint32_t pf[kBN / 16][4];
    float alpha[2];
    auto softmax = [&](auto edgeTag) {
      constexpr bool EDGE = decltype(edgeTag)::value;
#pragma unroll
      for (int hf = 0; hf < 2; hf++) {
        const int row = wgRow + warp * 16 + gq + hf * 8;
        const int limit = causal ? min(sq.nk, row + shift + 1) : sq.nk;
        // int32 → f32 once (exact: |Qi·Ki| ≤ 127²·128 < 2²⁴). A plain I2F: on sm_90 it beat the magic-number
        // IADD + FADD the sm80 kernel uses by 4.5 % at D = 64 (one issue slot instead of two; H200, A/B/A/B).
        // Masked keys become −inf.
        float x[2 * kChunks];
#pragma unroll
        for (int j = 0; j < kChunks; j++)
#pragma unroll
          for (int e = 0; e < 2; e++) {
            const float v = __int2float_rn(si[4 * j + 2 * hf + e]);
            x[2 * j + e] = EDGE && k0 + j * 8 + 2 * tq + e >= limit ? -INFINITY : v;
          }
        float m0 = -INFINITY, m1 = -INFINITY;
#pragma unroll
        for (int i = 0; i < 16; i++) m0 = fmaxf(m0, x[i]);
#pragma unroll
        for (int i = 16; i < 2 * kChunks; i++) m1 = fmaxf(m1, x[i]);
        float mx = fmaxf(rowMax[hf], fmaxf(m0 * sc0, m1 * sc1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        // A row that has seen no visible key keeps m = −inf; subtract 0 then so exp2 gives 0, not NaN.
        const float base = mx == -INFINITY ? 0.f : mx;
        alpha[hf] = fast_exp2(rowMax[hf] - base);
        rowMax[hf] = mx;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < kChunks; j++) {
          const float sc = j < 8 ? sc0 : sc1;
          const float p0 = fast_exp2(fmaf(x[2 * j], sc, -base)), p1 = fast_exp2(fmaf(x[2 * j + 1], sc, -base));
          sum += p0 + p1;
          pf[j >> 1][(j & 1) * 2 + hf] = pack_half2(p0, p1);
        }
        rowSum[hf] = rowSum[hf] * alpha[hf] + sum;
      }
    };
    if (edge) softmax(std::true_type{});
    else softmax(std::false_type{});
    if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
      for (int j = 0; j < ONUM / 4; j++) {
        acc[4 * j] *= alpha[0];
        acc[4 * j + 1] *= alpha[0];
        acc[4 * j + 2] *= alpha[1];
        acc[4 * j + 3] *= alpha[1];
      }
    }

    // O += P · V: 16-key k-steps; keys 64b.. sit in V block b, 32 bytes a k-step inside its 128-byte rows.
    const uint64_t vDesc = smem_desc<128>(stageV(st));
    constexpr uint64_t kBlockStep = L::kVBlock >> 4;
    if constexpr (PV_F32) {
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kBN / 16; kk++) {
        const uint64_t d = vDesc + (kk / 4) * kBlockStep + 2 * (kk % 4);
        if constexpr (DP == 128) wgmma_f16_f32acc_m64n128k16(acc, pf[kk], d, 1);
        else wgmma_f16_f32acc_m64n64k16(acc, pf[kk], d, 1);
      }
      wgmma_commit();
      wgmma_wait<0>();
      pin(acc);
    } else {
      // f16 sums per 64-key block (DESIGN §2 step 5), each block into its own partial, then added to O in f32.
      uint32_t part[kBlocks][DP / 4];
      wgmma_fence();
#pragma unroll
      for (int b = 0; b < kBlocks; b++)
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
          const uint64_t d = vDesc + b * kBlockStep + 2 * kk;
          if constexpr (DP == 128) wgmma_f16_f16acc_m64n128k16(part[b], pf[4 * b + kk], d, kk);
          else wgmma_f16_f16acc_m64n64k16(part[b], pf[4 * b + kk], d, kk);
        }
      wgmma_commit();
      wgmma_wait<0>();
#pragma unroll
      for (int b = 0; b < kBlocks; b++) pin(part[b]);
#pragma unroll
      for (int b = 0; b < kBlocks; b++)
#pragma unroll
        for (int j = 0; j < DP / 8; j++) {
          const float2 top = __half22float2(*reinterpret_cast<const __half2*>(&part[b][2 * j]));
          const float2 bottom = __half22float2(*reinterpret_cast<const __half2*>(&part[b][2 * j + 1]));
          acc[4 * j] += top.x;
          acc[4 * j + 1] += top.y;
          acc[4 * j + 2] += bottom.x;
          acc[4 * j + 3] += bottom.y;
        }
    }
    if (lane == 0) mbar_arrive(&empty[st]);
  }

  // O = acc / l, written in o's dtype and strides; the LSE restores the smoothing constant smScale·q·mean(K).
#pragma unroll
  for (int hf = 0; hf < 2; hf++) {
    float l = rowSum[hf];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = wgRow + warp * 16 + gq + hf * 8;
    if (row >= sq.nq) continue;
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const int64_t base = sq.b * o.sb + h * o.sh + int64_t(sq.q0 + row) * o.sn;
#pragma unroll
    for (int j = 0; j < DP / 8; j++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int d = j * 8 + 2 * tq + e;
        if (d < g.D) store_out(o, base + d * o.sd, acc[4 * j + 2 * hf + e] * inv);
      }
    if (lse != nullptr && tq == 0) {
      const float qm = w.qm[int64_t(h) * g.rowsQ + sq.qRow + row];
      const float value = row_lse(rowMax[hf], l, qm);
      lse[(int64_t(sq.b) * g.Hq + h) * g.Nq + sq.q0 + row] = value;
    }
  }
}

template <int DP, bool PV_F32>
cudaError_t launch(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal, cudaStream_t stream) {
  constexpr int smem = Smem<DP>::kBytes;
  auto kernel = attention_sm90_kernel<DP, PV_F32>;
  static bool configured = false;  // the attribute is per function; setting it twice is harmless
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(g.maxQ, Smem<DP>::kRows)), static_cast<unsigned>(g.S * g.Hq));
  if (grid.x == 0) return cudaSuccess;
  kernel<<<grid, 128 * warpgroups<DP>(), smem, stream>>>(g, w, o, lse, causal);
  return cudaGetLastError();
}

}  // namespace

int attention_sm90_smem_bytes(int DP) { return DP == 64 ? Smem<64>::kBytes : Smem<128>::kBytes; }

cudaError_t launch_attention_sm90(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal, bool pvF32,
                                  cudaStream_t stream) {
  switch (g.DP) {
    case 64: return pvF32 ? launch<64, true>(g, w, o, lse, causal, stream) : launch<64, false>(g, w, o, lse, causal, stream);
    case 128: return pvF32 ? launch<128, true>(g, w, o, lse, causal, stream) : launch<128, false>(g, w, o, lse, causal, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sa
