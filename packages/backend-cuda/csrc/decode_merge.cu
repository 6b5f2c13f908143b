// decode_merge.cu — the stage "output store" of a decode call split over key ranges: merges the partial (m, l, acc)
// sets decode_attention.cu left per (query group, split) in the workspace (kv_cache.h, decode_set_floats) in a fixed
// order — deterministic, the same sums whatever the timing — and writes O and the LSE of the group's live rows.
// A CTA takes kColumns float4 columns of one group's live rows; its kParts warps each take a contiguous quarter of
// the splits for all of those columns (a lane a column), so a thread loads at most kMaxDecodeSplits / kParts sets, all
// in flight at once, while each warp also loads (m, l) of its row and finds the weights exp2(m − M) (a split that saw
// no key weighs 0). The quarters' sums are then added in order and the row written.
// Launched right after the attention kernel as its programmatic dependent: its CTAs are scheduled while the attention
// kernel's last CTAs run and wait for all of them before reading. Many CTAs share the merge, where one CTA per group
// merging every split (the last to finish, before) was the tail of every step.
// Knobs:
//   kColumns   32    float4 columns per CTA (one per lane)
//   kParts     4     warps per CTA, each summing a quarter of the splits
#include <cuda_fp16.h>
#include "dependent_launch.cuh"
#include "epilogue.cuh"
#include "kv_cache.h"
#include "partial_merge.cuh"

namespace sa {
namespace {

constexpr int kColumns = 32;
constexpr int kParts = 4;
constexpr int kPerPart = kMaxDecodeSplits / kParts;  // sets a thread loads at most
constexpr int kRowsMax = 3;                          // rows 32 float4 columns can touch (D ≥ 64)

// Launch bounds of one CTA per SM: without them ptxas keeps few registers for occupancy and issues the loads a few at
// a time; with them every load of a thread is in flight at once, and the grid is a few CTAs per group anyway.
template <int DP>
__global__ void __launch_bounds__(kColumns * kParts, 1) decode_merge_kernel(KvCache c, DecodeCall call, int splits, int groupsPerHead) {
  constexpr int kSet = decode_set_floats(DP), kRows = kDecodeRows, kQuads = DP / 4;
  __shared__ float weight[kMaxDecodeSplits][kRowsMax];
  __shared__ float rowM[kRowsMax], rowL[kRowsMax];
  __shared__ float4 partial[kParts][kColumns];
  dependent_wait();  // every split's partial is written
  dependent_release();
  const int hg = blockIdx.y, head = hg / groupsPerHead, z = hg % groupsPerHead;
  const int b = head / c.Hkv, hk = head % c.Hkv, G = call.Hq / c.Hkv, Nq = call.Nq;
  const int row0 = z * kRows, live = min(kRows, G * Nq - row0);
  const int e0 = blockIdx.x * kColumns;  // this CTA's first float4 column of the group's live rows
  if (e0 >= live * kQuads) return;
  const int r0 = e0 / kQuads, r1 = min(live, (e0 + kColumns - 1) / kQuads + 1);  // rows [r0, r1)
  const int part = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int e = e0 + lane, rr = e / kQuads, d = e % kQuads * 4;
  const bool column = rr < live;
  const float* sets = call.scratch + int64_t(hg) * splits * kSet;

  // This warp's quarter of the splits for its lane's column: every load issued before any is used (a set past the
  // quarter is read again and weighs 0).
  const int w0 = part * splits / kParts, w1 = (part + 1) * splits / kParts;
  float4 x[kPerPart];
#pragma unroll
  for (int j = 0; j < kPerPart; j++)
    x[j] = column ? __ldcg(reinterpret_cast<const float4*>(sets + int64_t(min(w0 + j, splits - 1)) * kSet + rr * DP + d))
                  : make_float4(0.f, 0.f, 0.f, 0.f);

  // Warp i finds row r0 + i's weights (lanes over splits, two each: kMaxDecodeSplits = 64).
  if (r0 + part < r1) {
    const int row = r0 + part;
    float m[2], ls[2], wt[2], M, l;
#pragma unroll
    for (int k = 0; k < 2; k++) {
      const int w = lane + 32 * k;
      m[k] = w < splits ? __ldcg(sets + int64_t(w) * kSet + kRows * DP + row) : -INFINITY;
      ls[k] = w < splits ? __ldcg(sets + int64_t(w) * kSet + kRows * DP + kRows + row) : 0.f;
    }
    merge_weights(m, ls, wt, M, l);
#pragma unroll
    for (int k = 0; k < 2; k++)
      if (lane + 32 * k < splits) weight[lane + 32 * k][part] = wt[k];
    if (lane == 0) rowM[part] = M, rowL[part] = l;
  }
  __syncthreads();

  float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
  for (int j = 0; j < kPerPart; j++) {
    const float wt = column && w0 + j < w1 ? weight[w0 + j][rr - r0] : 0.f;
    a.x += x[j].x * wt, a.y += x[j].y * wt, a.z += x[j].z * wt, a.w += x[j].w * wt;
  }
  partial[part][lane] = a;
  __syncthreads();
  if (part != 0 || !column) return;
#pragma unroll
  for (int p = 1; p < kParts; p++) {
    const float4 y = partial[p][lane];
    a.x += y.x, a.y += y.y, a.z += y.z, a.w += y.w;
  }
  const float M = rowM[rr - r0], l = rowL[rr - r0], inv = row_inverse(l);
  const int r = row0 + rr, h = hk * G + r / Nq, i = r % Nq;
  const int64_t base = int64_t(b) * call.o.sb + int64_t(h) * call.o.sh + int64_t(i) * call.o.sn;
  store_pair(call.o, base + d * call.o.sd, d, c.D, a.x * inv, a.y * inv);
  store_pair(call.o, base + (d + 2) * call.o.sd, d + 2, c.D, a.z * inv, a.w * inv);
  if (d == 0 && call.lse != nullptr)
    call.lse[(int64_t(b) * call.Hq + h) * Nq + i] = row_lse(M, l, __ldcg(sets + kRows * DP + 2 * kRows + rr));
}

}  // namespace

cudaError_t launch_decode_merge(const KvCache& c, const DecodeCall& call, int splits, int groups, int groupsPerHead, cudaStream_t stream) {
  if (splits > kMaxDecodeSplits) return cudaErrorInvalidValue;
  const int liveMost = min(kDecodeRows, call.Hq / c.Hkv * call.Nq);
  const dim3 grid{unsigned(ceil_div(int64_t(liveMost) * c.DP / 4, kColumns)), unsigned(groups)};
  const dim3 block{unsigned(kColumns * kParts)};
  auto go = [&](auto kernel) { return launch_dependent(kernel, grid, block, 0, stream, call.pdl, c, call, splits, groupsPerHead); };
  switch (c.DP) {
    case 64: return go(decode_merge_kernel<64>);
    case 96: return go(decode_merge_kernel<96>);
    case 128: return go(decode_merge_kernel<128>);
    case 256: return go(decode_merge_kernel<256>);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sa
