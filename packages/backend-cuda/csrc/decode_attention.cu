// decode_attention.cu — few-query attention against a KV cache (kv_cache.h): the stages "Q quantization",
// "attention" and "output store" for decode, split over key blocks (split-K).
//
// A CTA = 4 warps = one 16-row query group of one (batch entry, kv head) × one range of 64-key blocks. The group's rows
// are the flattened (query head of this kv head, query) pairs, so GQA heads share every K/V byte the CTA reads:
//   Q quantization   in registers while the first K/V block streams in: each row's 128-query block max
//                    (docs/DESIGN.md §2 step 2), Qi into shared memory, smScale·q·mean for the LSE
//   S = Qi·Kiᵀ       mma.sync m16n8k32 s8, one warp per 64-key block (warps take every 4th block of the range)
//   online softmax   in exp2, per-row scale sQ·sK; keys past the length, or past a row's causal limit, are −inf
//   O += P·V         mma.sync m16n8k16 f16, f16 within each block then f32 (or f32 throughout with PV_F32); with
//                    the int8 value format (VI8) INT8 V widened to f16 in registers, each key's sV folded into P; a
//                    block the cache flagged (its V past kF16BlockVLimit) sums P/64 in f16, then × 64
// Then the 4 warps' (m, l, acc) merge in shared memory and the CTA writes O and the LSE; with several splits it leaves
// its merge in `scratch` instead, and decode_merge.cu (the next launch, a programmatic dependent) merges the splits in a
// fixed order — deterministic — with many CTAs at once.
// Lane (g = lane/4, t = lane%4) owns rows g and g+8 of its warp's m16 tile and columns 2t, 2t+1 of each n8 tile.
// Knobs (NVIDIA H200, B1 Hkv8 G4 D128: NOTES.md):
//   kWarps        4      blocks in flight per CTA (each warp streams its own 24 KB K+V block at D = 128)
//   kCtasPerSm    2      splits are chosen so the grid has about this many CTAs per SM (shared memory allows 2; one
//                        CTA per SM streams a third slower: bandwidth grows with the bytes in flight per SM)
//   kMinBlocks    4      a split gets at least this many 64-key blocks (one per warp)
// A warp holds one block's K and V: its next K streams during this block's softmax and P·V, its next V during the next
// Q·Kᵀ (double-buffering a warp needs 213 KB, one CTA per SM, and streamed slower than two CTAs per SM).
#include <cuda_fp16.h>
#include <type_traits>
#include "dependent_launch.cuh"
#include "epilogue.cuh"
#include "kernels.h"
#include "kv_cache.h"
#include "mma.cuh"
#include "partial_merge.cuh"
#include "tensor_load.cuh"

namespace sa {
namespace {

constexpr int kWarps = 4;
constexpr int kCtasPerSm = 2;
constexpr int kMinBlocks = kWarps;
constexpr int kRows = kDecodeRows;  // query rows per group (one m16 tile)
constexpr int kKeys = kKBlock;  // keys per block (one sK)

template <int DP, bool VI8>
struct DecodeSmem {
  static constexpr int kRowI8 = DP + 16;      // padded int8 row (ldmatrix rows fall in distinct bank groups)
  static constexpr int kRowF16 = 2 * DP + 16;
  static constexpr int kRowVi = kKeys + 16;   // an int8 V block's channel: 64 keys, padded as kRowI8
  // One V block: f16 rows, or (int8 format) INT8 channel rows and the block's 64 scales.
  static constexpr int kVBytes = VI8 ? DP * kRowVi + kKeys * 4 : kKeys * kRowF16;
  static constexpr int kWarpBytes = kKeys * kRowI8 + kVBytes;  // one K block + one V block
  static constexpr int kQ = kRows * kRowI8;
  static constexpr int kBytes = kWarps * kWarpBytes + kQ + 3 * kRows * 4;
  // A warp's partial rows in its own K/V region at the end: DP + 8 floats apart, so a warp's float2 stores of 4 rows
  // fall in distinct banks.
  static constexpr int kMineRow = DP + 8;
  static_assert(kRows * kMineRow * 4 + 2 * kRows * 4 <= kWarpBytes, "a warp's merge rows fit its K/V region");
};

// Splits of the key blocks: enough CTAs to fill the GPU, at least kMinBlocks blocks each.
int splits_for(int groups, int blocks, int sms) {
  const int wanted = int(ceil_div(int64_t(kCtasPerSm) * sms, groups));
  const int most = int(ceil_div(blocks, kMinBlocks));
  return max(1, min(kMaxDecodeSplits, min(wanted, most)));
}

template <int DP, bool PV_F32, bool VI8>
__global__ void __launch_bounds__(32 * kWarps, kCtasPerSm) decode_kernel(KvCache c, DecodeCall call, int groupsPerHead) {
  using L = DecodeSmem<DP, VI8>;
  constexpr int KSTEPS = DP / 32, DTILES = DP / 8;
  extern __shared__ __align__(128) char smem[];
  char* sQ = smem + kWarps * L::kWarpBytes;
  float* qScale = reinterpret_cast<float*>(sQ + L::kQ);
  float* qMean = qScale + kRows;  // then rowAbs: kRows more floats

  // Launched as a programmatic dependent (call.pdl): wait for the previous kernel in the stream (it may have written q,
  // the cache or, a previous step's merge, read the scratch), then let the next one (the merge) be scheduled early.
  dependent_wait();
  dependent_release();
  const int split = blockIdx.x, splits = gridDim.x;
  const int hg = blockIdx.y, head = hg / groupsPerHead, z = hg % groupsPerHead;
  const int b = head / c.Hkv, hk = head % c.Hkv, G = call.Hq / c.Hkv, Nq = call.Nq, length = call.length;
  const int rowsTotal = G * Nq, row0 = z * kRows;
  const int live = min(kRows, rowsTotal - row0);  // rows of this group that exist (4 of 16 at Nq = 1, G = 4)
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
  const float fold = log2e_fold(call.smScale);

  // The keys this group may see, and this split's blocks of them.
  const int shift = length - Nq;
  int maxQuery = 0;  // the largest query index among the group's rows
  for (int r = row0; r < min(rowsTotal, row0 + kRows); r++) maxQuery = max(maxQuery, r % Nq);
  const int keyEnd = call.causal ? max(0, min(length, maxQuery + shift + 1)) : length;
  const int blocks = int(ceil_div(keyEnd, kKeys));
  // Split s takes blocks [s·n/S, (s+1)·n/S): sizes differ by at most one, so no split idles while others stream.
  const int lengthBlocks = int(ceil_div(length, kKeys));
  const int kb0 = int(int64_t(split) * lengthBlocks / splits), kb1 = min(blocks, int(int64_t(split + 1) * lengthBlocks / splits));

  // Warp w takes blocks kb0 + w, kb0 + w + kWarps, …; K and V of a block are separate copy groups, so the next K is in
  // flight during this block's softmax and P·V, and the next V during the next block's wait for K and its Q·Kᵀ.
  char* sk = smem + warp * L::kWarpBytes;
  const char* kg = reinterpret_cast<const char*>(c.ki + int64_t(head) * c.capPad * DP);
  const char* vg = VI8 ? reinterpret_cast<const char*>(c.vi + int64_t(head) * c.capPad * DP)
                      : reinterpret_cast<const char*>(c.vh + int64_t(head) * c.capPad * DP);
  const char* sg = VI8 ? reinterpret_cast<const char*>(c.vs + int64_t(head) * c.capPad) : nullptr;
  const float* kScales = c.ks + int64_t(head) * (c.capPad / kKeys);
  constexpr int kChunksK = kKeys * DP / 16, kChunksV = kKeys * DP * 2 / 16, kChunksVi = kKeys * DP / 16;
  auto issueK = [&](int blk) {
    const char* kb = kg + int64_t(blk) * kKeys * DP;
#pragma unroll 4
    for (int i = lane; i < kChunksK; i += 32) cp_async_16_prefetch(sk + (i / (DP / 16)) * L::kRowI8 + (i % (DP / 16)) * 16, kb + i * 16);
    cp_async_commit();
  };
  auto issueV = [&](int blk) {
    char* dv = sk + kKeys * L::kRowI8;
    if constexpr (VI8) {  // DP channel rows of 64 bytes, then the 64 scales
      const char* vb = vg + int64_t(blk) * kKeys * DP;
#pragma unroll 4
      for (int i = lane; i < kChunksVi; i += 32) cp_async_16_prefetch(dv + (i / (kKeys / 16)) * L::kRowVi + (i % (kKeys / 16)) * 16, vb + i * 16);
      if (lane < kKeys * 4 / 16) cp_async_16(dv + DP * L::kRowVi + lane * 16, sg + (int64_t(blk) * kKeys + lane * 4) * 4);
    } else {
      const char* vb = vg + int64_t(blk) * kKeys * DP * 2;
#pragma unroll 4
      for (int i = lane; i < kChunksV; i += 32) cp_async_16_prefetch(dv + (i / (DP / 8)) * L::kRowF16 + (i % (DP / 8)) * 16, vb + i * 16);
    }
    cp_async_commit();
  };
  // The first block streams in while Q is quantized.
  if (kb0 + warp < kb1) {
    issueK(kb0 + warp);
    issueV(kb0 + warp);
  }

  // Q quantization (docs/DESIGN.md §2 step 2), in registers: 8 threads a row, DP/8 channels each; each row's max
  // |q·fold| and smScale·q·mean, then the scale of its 128-query block of its head: from the group's own rows when the
  // block lies inside the group (always at decode sizes), else by reading the block's other rows.
  const TensorRef& q = call.q;
  float* rowAbs = qMean + kRows;
  auto rowAt = [&](int r, int& h, int& i) {
    h = hk * G + r / Nq;
    i = r % Nq;
  };
  constexpr int kPer = DP / 8;
  const int qRow = tid >> 3, qPart = tid & 7;
  // With Nq dividing 4 a head's queries (one 128-query block) are 8·Nq consecutive lanes of one warp: its scale is a
  // shuffle away, with no round trip through shared memory (every decode step with Nq = 1, 2 or 4).
  const bool blockInWarp = Nq <= 4 && 4 % Nq == 0;
  float qv[kPer], rowScale = 1.f;
  {
    const int r = row0 + qRow;
    int h = 0, i = 0;
    if (r < rowsTotal) rowAt(r, h, i);
    const int64_t base = int64_t(b) * q.sb + int64_t(h) * q.sh + int64_t(i) * q.sn;
    const float* mean = c.mean + int64_t(head) * DP;
    float mx = 0.f, dot = 0.f;
#pragma unroll
    for (int j = 0; j < kPer; j += 4) {
      const int ch = qPart * kPer + j;
      const float4 x = r < rowsTotal && ch < c.D ? load4(q, base + ch * q.sd, ch, c.D) : make_float4(0.f, 0.f, 0.f, 0.f);
      qv[j] = x.x, qv[j + 1] = x.y, qv[j + 2] = x.z, qv[j + 3] = x.w;
    }
#pragma unroll
    for (int j = 0; j < kPer; j++) {
      mx = fmax_nan(mx, fabsf(qv[j] * fold));
      dot += qv[j] * mean[qPart * kPer + j];
    }
#pragma unroll
    for (int o = 1; o < 8; o <<= 1) {
      mx = fmax_nan(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      dot += __shfl_xor_sync(0xffffffffu, dot, o);
    }
    if (qPart == 0) rowAbs[qRow] = mx, qMean[qRow] = call.smScale * dot;
    if (blockInWarp) {
      for (int o = 8; o < 8 * Nq; o <<= 1) mx = fmax_nan(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      rowScale = r < rowsTotal ? int8_scale(mx) : 1.f;
      if (qPart == 0) qScale[qRow] = rowScale;
    }
  }
  if (!blockInWarp) {
    __syncthreads();
    for (int rr = warp; rr < kRows; rr += kWarps) {
      const int r = row0 + rr;
      if (r >= rowsTotal) {
        if (lane == 0) qScale[rr] = 1.f;
        continue;
      }
      int h, i;
      rowAt(r, h, i);
      const int bs = i / kQBlock * kQBlock, be = min(Nq, bs + kQBlock);
      const int first = r - (i - bs), last = r + (be - 1 - i);  // the block's rows in the group's numbering
      float mx = 0.f;
      if (first >= row0 && last < row0 + kRows) {
        for (int x = first + lane; x <= last; x += 32) mx = fmax_nan(mx, rowAbs[x - row0]);
      } else {
        const int64_t base = int64_t(b) * q.sb + int64_t(h) * q.sh;
        for (int ii = bs; ii < be; ii++)
          for (int ch = lane; ch < c.D; ch += 32) mx = fmax_nan(mx, fabsf(load(q, base + ii * q.sn + ch * q.sd) * fold));
      }
      for (int o = 16; o > 0; o >>= 1) mx = fmax_nan(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      if (lane == 0) qScale[rr] = int8_scale(mx);
    }
    __syncthreads();
    rowScale = qScale[qRow];
  }
  {
    const Divisor by = divisor(rowScale);
    uint32_t* dst = reinterpret_cast<uint32_t*>(sQ + qRow * L::kRowI8 + qPart * kPer);
#pragma unroll
    for (int j = 0; j < kPer; j += 4) dst[j / 4] = quantize4_word(qv[j] * fold, qv[j + 1] * fold, qv[j + 2] * fold, qv[j + 3] * fold, by);
  }
  __syncthreads();

  uint32_t qf[KSTEPS][4];
#pragma unroll
  for (int ks = 0; ks < KSTEPS; ks++) ldmatrix_x4(qf[ks], sQ + (lane & 15) * L::kRowI8 + ks * 32 + (lane >> 4) * 16);

  int limit[2];
  float rowQ[2];
#pragma unroll
  for (int hf = 0; hf < 2; hf++) {
    const int rr = gq + hf * 8, r = row0 + rr;
    limit[hf] = r < rowsTotal && call.causal ? min(length, r % Nq + shift + 1) : length;
    rowQ[hf] = qScale[rr];
  }

  float acc[DTILES][4];
#pragma unroll
  for (int dt = 0; dt < DTILES; dt++)
#pragma unroll
    for (int e = 0; e < 4; e++) acc[dt][e] = 0.f;
  float rowMax[2] = {-INFINITY, -INFINITY}, rowSum[2] = {0.f, 0.f};

  for (int blk = kb0 + warp; blk < kb1; blk += kWarps) {
    const bool more = blk + kWarps < kb1;
    cp_async_wait<1>();  // this block's K (its V may still be in flight)
    __syncwarp();
    const char* sv = sk + kKeys * L::kRowI8;

    int32_t si[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) si[nt][e] = 0;
#pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++)
#pragma unroll
      for (int np = 0; np < 4; np++) {
        uint32_t bf[4];
        const int key = np * 16 + ((lane >> 4) << 3) + (lane & 7);
        ldmatrix_x4(bf, sk + key * L::kRowI8 + ks * 32 + ((lane >> 3) & 1) * 16);
        mma_s8(si[2 * np], qf[ks], bf[0], bf[1]);
        mma_s8(si[2 * np + 1], qf[ks], bf[2], bf[3]);
      }

    __syncwarp();  // every lane is done reading this block's K
    if (more) {
      issueK(blk + kWarps);
      cp_async_wait<1>();  // this block's V
    } else {
      cp_async_wait<0>();
    }
    __syncwarp();

    const int k0 = blk * kKeys;
    // A block whose sK the append negated holds a V past kF16BlockVLimit (KvCache::ks): with f16 sums its P is taken
    // as P/64 (exp2 of 6 less) and its sums × 64 join O, so they stay finite.
    const float sK = fabsf(kScales[blk]);
    const bool wide = !PV_F32 && !VI8 && signbit(kScales[blk]);
    const float pShift = wide ? float(kWideShift) : 0.f, pScale = wide ? float(1 << kWideShift) : 1.f;
    // int8 values: a key's P carries sV/top, top the block's largest sV, and the block's P·V is scaled by top as it
    // is added to O, so P stays within f16's normal range however large or small V is.
    float ratio[16], blockScale = 1.f;
    if constexpr (VI8) {
      const float* sV = reinterpret_cast<const float*>(sv + DP * L::kRowVi);
      float top = 0.f;
#pragma unroll
      for (int j = 0; j < 16; j++) {
        const int key = (j >> 1) * 8 + 2 * tq + (j & 1);
        ratio[j] = k0 + key < length ? sV[key] : 0.f;  // keys past the length were never written
        top = fmaxf(top, ratio[j]);
      }
      top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 1));
      top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 2));
      const float inv = 1.f / top;  // every written row's sV is positive (1 for a zero row)
#pragma unroll
      for (int j = 0; j < 16; j++) ratio[j] *= inv;
      blockScale = top;
    }
    uint32_t pf[4][4] = {};
    float alpha[2];
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
      if (hf == 1 && live <= 8) {  // rows 8..15 do not exist: their P stays zero and their O is never read
        alpha[1] = 1.f;
        break;
      }
      const float scale = rowQ[hf] * sK;
      float x[16];
#pragma unroll
      for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 2; e++) x[2 * nt + e] = k0 + nt * 8 + 2 * tq + e >= limit[hf] ? -INFINITY : __int2float_rn(si[nt][2 * hf + e]) * scale;
      float mx = rowMax[hf];
#pragma unroll
      for (int j = 0; j < 16; j++) mx = fmaxf(mx, x[j]);
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == -INFINITY ? 0.f : mx;
      alpha[hf] = fast_exp2(rowMax[hf] - base);
      rowMax[hf] = mx;
      float sum = 0.f;
      const float pBase = base + pShift;
#pragma unroll
      for (int nt = 0; nt < 8; nt++) {
        const float p0 = fast_exp2(x[2 * nt] - pBase), p1 = fast_exp2(x[2 * nt + 1] - pBase);
        sum += p0 + p1;
        pf[nt >> 1][(nt & 1) * 2 + hf] = VI8 ? pack_half2(p0 * ratio[2 * nt], p1 * ratio[2 * nt + 1]) : pack_half2(p0, p1);
      }
      rowSum[hf] = fmaf(sum, pScale, rowSum[hf] * alpha[hf]);
    }
#pragma unroll
    for (int dt = 0; dt < DTILES; dt++) {
      acc[dt][0] *= alpha[0];
      acc[dt][1] *= alpha[0];
      acc[dt][2] *= alpha[1];
      acc[dt][3] *= alpha[1];
    }

    const int vKey = (lane & 7) + ((lane >> 3) & 1) * 8, vCol = (lane >> 4) * 8;
    if constexpr (VI8) {
      // 32 output columns at a time: one ldmatrix of 32 channels × 16 keys gives each lane its four n8 tiles' B
      // fragments as INT8 words (kv_vi_slot), widened to f16 pairs; f16 (or f32) sums within the block, then × top.
#pragma unroll
      for (int dc = 0; dc < DP / 32; dc++) {
        float part[4][4] = {};
        uint32_t half[4][2] = {};
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
          uint32_t w[4];
          ldmatrix_x4(w, sv + (dc * 32 + (lane >> 3) * 8 + (lane & 7)) * L::kRowVi + kk * 16);
#pragma unroll
          for (int j = 0; j < 4; j++) {
            uint32_t b0, b1;
            int8x4_to_half2x2(w[j], b0, b1);
            if constexpr (PV_F32) mma_f16_f32acc(part[j], pf[kk], b0, b1);
            else mma_f16_f16acc(half[j], pf[kk], b0, b1);
          }
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
          if constexpr (!PV_F32) {
            const float2 top = __half22float2(*reinterpret_cast<const __half2*>(&half[j][0]));
            const float2 bottom = __half22float2(*reinterpret_cast<const __half2*>(&half[j][1]));
            part[j][0] = top.x, part[j][1] = top.y, part[j][2] = bottom.x, part[j][3] = bottom.y;
          }
#pragma unroll
          for (int e = 0; e < 4; e++) acc[dc * 4 + j][e] += part[j][e] * blockScale;
        }
      }
    } else if constexpr (PV_F32) {
#pragma unroll
      for (int kk = 0; kk < 4; kk++)
#pragma unroll
        for (int dp = 0; dp < DP / 16; dp++) {
          uint32_t bf[4];
          ldmatrix_x4_trans(bf, sv + (kk * 16 + vKey) * L::kRowF16 + (dp * 16 + vCol) * 2);
          mma_f16_f32acc(acc[2 * dp], pf[kk], bf[0], bf[1]);
          mma_f16_f32acc(acc[2 * dp + 1], pf[kk], bf[2], bf[3]);
        }
    } else {
      // f16 sums within the block (docs/DESIGN.md §2 step 5), 32 output columns at a time, then added to O in f32.
#pragma unroll
      for (int dc = 0; dc < DP / 32; dc++) {
        uint32_t part[4][2] = {};
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
#pragma unroll
          for (int dp = 0; dp < 2; dp++) {
            uint32_t bf[4];
            ldmatrix_x4_trans(bf, sv + (kk * 16 + vKey) * L::kRowF16 + (dc * 32 + dp * 16 + vCol) * 2);
            mma_f16_f16acc(part[2 * dp], pf[kk], bf[0], bf[1]);
            mma_f16_f16acc(part[2 * dp + 1], pf[kk], bf[2], bf[3]);
          }
#pragma unroll
        for (int j = 0; j < 4; j++) {
          const float2 top = __half22float2(*reinterpret_cast<const __half2*>(&part[j][0]));
          const float2 bottom = __half22float2(*reinterpret_cast<const __half2*>(&part[j][1]));
          acc[dc * 4 + j][0] = fmaf(top.x, pScale, acc[dc * 4 + j][0]);
          acc[dc * 4 + j][1] = fmaf(top.y, pScale, acc[dc * 4 + j][1]);
          acc[dc * 4 + j][2] = fmaf(bottom.x, pScale, acc[dc * 4 + j][2]);
          acc[dc * 4 + j][3] = fmaf(bottom.y, pScale, acc[dc * 4 + j][3]);
        }
      }
    }
    __syncwarp();  // every lane is done reading this block's V
    if (more) issueV(blk + kWarps);
  }

  // The warp's live rows into its own region: acc [16][kMineRow], then m [16], l [16].
  constexpr int kMineRow = L::kMineRow;
  float* mine = reinterpret_cast<float*>(sk);
#pragma unroll
  for (int hf = 0; hf < 2; hf++) {
    if (hf == 1 && live <= 8) break;  // the merge reads live rows only
    float l = rowSum[hf];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int rr = gq + hf * 8;
#pragma unroll
    for (int dt = 0; dt < DTILES; dt++)
      *reinterpret_cast<float2*>(mine + rr * kMineRow + dt * 8 + 2 * tq) = make_float2(acc[dt][2 * hf], acc[dt][2 * hf + 1]);
    if (tq == 0) {
      mine[kRows * kMineRow + rr] = rowMax[hf];
      mine[kRows * kMineRow + kRows + rr] = l;
    }
  }
  __syncthreads();

  // The warps' partial (m, l, acc) sets, merged per row: weights exp2(m − M), a warp that saw no key weighing 0; each
  // warp finds them for its rows, every load issued before the first reduction. Then each thread sums its float4
  // columns (two at a time when the live rows have more of them than the CTA has threads) over the kWarps sets.
  __shared__ float weight[kWarps][kRows];
  __shared__ float rowM[kRows], rowL[kRows];
  auto warpAt = [&](int w, int j) { return reinterpret_cast<const float*>(smem + w * L::kWarpBytes)[j]; };
  auto warpAt4 = [&](int w, int j) { return *reinterpret_cast<const float4*>(smem + w * L::kWarpBytes + j * 4); };
  {
    constexpr int kRowsPerWarp = kRows / kWarps;
    float m[kRowsPerWarp], ls[kRowsPerWarp];
#pragma unroll
    for (int k = 0; k < kRowsPerWarp; k++) {
      const int rr = warp + kWarps * k;
      const bool in = rr < live && lane < kWarps;
      m[k] = in ? warpAt(lane, kRows * kMineRow + rr) : -INFINITY;
      ls[k] = in ? warpAt(lane, kRows * kMineRow + kRows + rr) : 0.f;
    }
#pragma unroll
    for (int k = 0; k < kRowsPerWarp; k++) {
      const int rr = warp + kWarps * k;
      if (rr >= live) break;
      float wt[1], M, l;
      merge_weights<1>({m[k]}, {ls[k]}, wt, M, l);
      if (lane < kWarps) weight[lane][rr] = wt[0];
      if (lane == 0) rowM[rr] = M, rowL[rr] = l;
    }
  }
  __syncthreads();
  float* own = splits > 1 ? call.scratch + (int64_t(hg) * splits + split) * decode_set_floats(DP) : nullptr;
  auto write4 = [&](int rr, int d, float4 a) {
    const float M = rowM[rr], l = rowL[rr];
    if (splits > 1) {  // the partial of this split (and the row's smScale·q·mean) for decode_merge.cu
      *reinterpret_cast<float4*>(own + rr * DP + d) = a;
      if (d == 0) {
        own[kRows * DP + rr] = M;
        own[kRows * DP + kRows + rr] = l;
        own[kRows * DP + 2 * kRows + rr] = qMean[rr];
      }
      return;
    }
    const int r = row0 + rr;
    const int h = hk * G + r / Nq, i = r % Nq;
    const float inv = row_inverse(l);
    const int64_t base = int64_t(b) * call.o.sb + int64_t(h) * call.o.sh + int64_t(i) * call.o.sn;
    store_pair(call.o, base + d * call.o.sd, d, c.D, a.x * inv, a.y * inv);
    store_pair(call.o, base + (d + 2) * call.o.sd, d + 2, c.D, a.z * inv, a.w * inv);
    if (d == 0 && call.lse != nullptr) call.lse[(int64_t(b) * call.Hq + h) * Nq + i] = row_lse(M, l, qMean[rr]);
  };
  constexpr int kStep = 32 * kWarps * 4;
  const int total = live * DP;
  auto sum = [&](auto cols) {
    constexpr int kCols = decltype(cols)::value;
    for (int e0 = tid * 4; e0 < total; e0 += kCols * kStep) {
      float4 x[kCols][kWarps];
#pragma unroll
      for (int k = 0; k < kCols; k++)
#pragma unroll
        for (int w = 0; w < kWarps; w++) {
          const int e = e0 + k * kStep;
          x[k][w] = e < total ? warpAt4(w, e / DP * kMineRow + e % DP) : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
      for (int k = 0; k < kCols; k++) {
        const int e = e0 + k * kStep, rr = e / DP;
        if (e >= total) break;
        float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int w = 0; w < kWarps; w++) {
          const float wt = weight[w][rr];
          a.x += x[k][w].x * wt, a.y += x[k][w].y * wt, a.z += x[k][w].z * wt, a.w += x[k][w].w * wt;
        }
        write4(rr, e % DP, a);
      }
    }
  };
  if (total <= kStep) sum(std::integral_constant<int, 1>{});
  else sum(std::integral_constant<int, 2>{});
}

template <int DP, bool PV_F32, bool VI8>
cudaError_t launch(const KvCache& c, const DecodeCall& call, dim3 grid, int groupsPerHead, cudaStream_t stream) {
  constexpr int smem = DecodeSmem<DP, VI8>::kBytes;
  auto kernel = decode_kernel<DP, PV_F32, VI8>;
  static bool configured = false;
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  // A decode step is a few µs of work: overlapping its launch with the previous kernel's tail is worth a µs or two.
  return launch_dependent(kernel, grid, dim3(32 * kWarps), smem, stream, call.pdl, c, call, groupsPerHead);
}

// The instantiation for the call's P·V accumulation and the cache's value format.
template <int DP>
cudaError_t launch_for(const KvCache& c, const DecodeCall& call, dim3 grid, int groupsPerHead, cudaStream_t stream) {
  if (c.vInt8)
    return call.pvF32 ? launch<DP, true, true>(c, call, grid, groupsPerHead, stream) : launch<DP, false, true>(c, call, grid, groupsPerHead, stream);
  return call.pvF32 ? launch<DP, true, false>(c, call, grid, groupsPerHead, stream) : launch<DP, false, false>(c, call, grid, groupsPerHead, stream);
}

int groups_per_head(const KvCache& c, int Hq, int Nq) { return int(ceil_div(int64_t(Hq / c.Hkv) * Nq, kRows)); }

template <bool VI8>
int smem_bytes(int DP) {
  switch (DP) {
    case 64: return DecodeSmem<64, VI8>::kBytes;
    case 96: return DecodeSmem<96, VI8>::kBytes;
    case 128: return DecodeSmem<128, VI8>::kBytes;
    default: return DecodeSmem<256, VI8>::kBytes;
  }
}

}  // namespace

uint64_t decode_scratch_bytes(const KvCache& c, int Hq, int Nq, int sms) {
  const int groups = c.B * c.Hkv * groups_per_head(c, Hq, Nq);
  const int splits = splits_for(groups, int(ceil_div(c.capPad, kKeys)), sms);
  return splits == 1 ? 0 : uint64_t(groups) * splits * decode_set_floats(c.DP) * sizeof(float);
}

cudaError_t launch_decode_attention(const KvCache& c, const DecodeCall& call, int sms, cudaStream_t stream) {
  const int perHead = groups_per_head(c, call.Hq, call.Nq);
  if (perHead > kMaxGroups) return cudaErrorInvalidValue;
  const int groups = c.B * c.Hkv * perHead;
  // Splits from the current length, capped by what the scratch (sized for the capacity) holds.
  const int splits = splits_for(groups, int(ceil_div(call.length, kKeys)), sms);
  const dim3 grid{unsigned(splits), unsigned(groups)};
  cudaError_t e;
  switch (c.DP) {
    case 64: e = launch_for<64>(c, call, grid, perHead, stream); break;
    case 96: e = launch_for<96>(c, call, grid, perHead, stream); break;
    case 128: e = launch_for<128>(c, call, grid, perHead, stream); break;
    case 256: e = launch_for<256>(c, call, grid, perHead, stream); break;
    default: return cudaErrorInvalidValue;
  }
  if (e != cudaSuccess || splits == 1) return e;
  return launch_decode_merge(c, call, splits, groups, perHead, stream);
}

int decode_smem_bytes(int DP, bool vInt8) { return vInt8 ? smem_bytes<true>(DP) : smem_bytes<false>(DP); }

}  // namespace sa
