// partial_merge.cuh — how a split decode call combines a row's partial softmax results (m, l, acc) from several
// sets: the in-CTA merge of decode_attention.cu's warps and decode_merge.cu's merge of the splits share it.
#pragma once
#include <cmath>
#include "mma.cuh"

namespace sa {

// The weights of K sets per lane (set lane + 32·k in m[k], l[k]; a missing set has m = −∞ and l = 0): wt[k] =
// exp2(m[k] − M), 0 for a set that saw no key, with M the row's maximum and L = Σ l·wt over every set of the warp,
// both returned alike on every lane. The merged row is Σ acc·wt / L.
template <int K>
__device__ __forceinline__ void merge_weights(const float (&m)[K], const float (&l)[K], float (&wt)[K], float& M, float& L) {
  M = -INFINITY;
#pragma unroll
  for (int k = 0; k < K; k++) M = fmaxf(M, m[k]);
  for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
  L = 0.f;
#pragma unroll
  for (int k = 0; k < K; k++) {
    wt[k] = m[k] == -INFINITY ? 0.f : fast_exp2(m[k] - M);
    L += l[k] * wt[k];
  }
  for (int o = 16; o > 0; o >>= 1) L += __shfl_xor_sync(0xffffffffu, L, o);
}

}  // namespace sa
