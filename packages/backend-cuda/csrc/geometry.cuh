// geometry.cuh — how a call's sequences map onto the packed workspace, shared by the pre-pass and the kernel.
// Without varlen each batch entry is one sequence; with varlen (B = 1) sequence s owns tokens cu[s]..cu[s+1].
// Every sequence starts its own quantization blocks, so the workspace pads each one to whole blocks:
//   Q rows of sequence s start at  s·roundup(Nq,128)  (varlen: cuQ[s] + 128·s), likewise K (kKRowPad = 128 too);
//   its Q block scales start at    s·ceil(Nq/128)     (varlen: cuQ[s]/128 + s), likewise K;
//   with a finer granularity each block's slot holds 2^(7 − qShift) Q scales (2^(6 − kShift) K scales), one per
//   2^qShift rows (2^kShift keys, or at "thread" the groups of k_thread_group): q_scale_slot and k_scale_slot below.
// Padded rows and channels hold zeros, so the attention kernel reads whole tiles without bounds checks.
#pragma once
#include <cstdint>
#include "tile_size.h"

namespace sa {

struct Geometry {
  int B, Hq, Hkv, Nq, Nk, D, DP, group;
  int S;                     // sequences
  int maxQ, maxK;            // longest sequence (grid size)
  const int32_t* cuQ;        // null without varlen
  const int32_t* cuK;
  int64_t rowsQ, rowsK;      // padded rows per head in the workspace
  int64_t qSlots, kSlots;    // scale slots (Q and K blocks) per head
  int qShift, kShift;        // log2 of the rows per Q scale (7, 4 or 0) and of the keys per K scale (6 or 4),
                             // tile_size.h's shifts
  bool kThread;              // K at "thread": key j's scale is k_thread_group(j), not j >> kShift
};

struct Sequence {
  int b, q0, nq, k0, nk;     // batch entry, first token and token count in the input tensors
  int64_t qRow, kRow;        // first padded workspace row
  int64_t qSlot, kSlot;      // first scale slot
};

__host__ __device__ inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
__host__ __device__ inline int64_t ceil_div(int64_t x, int64_t m) { return (x + m - 1) / m; }

__device__ inline Sequence sequence(const Geometry& g, int s) {
  Sequence q;
  if (g.cuQ) {
    q.b = 0;
    q.q0 = g.cuQ[s];
    q.nq = g.cuQ[s + 1] - q.q0;
    q.k0 = g.cuK[s];
    q.nk = g.cuK[s + 1] - q.k0;
    q.qRow = q.q0 + int64_t(kQBlock) * s;
    q.kRow = q.k0 + int64_t(kKRowPad) * s;
    q.qSlot = q.q0 / kQBlock + s;
    q.kSlot = q.k0 / kKBlock + s;
  } else {
    q.b = s;
    q.q0 = 0;
    q.nq = g.Nq;
    q.k0 = 0;
    q.nk = g.Nk;
    q.qRow = s * round_up(g.Nq, kQBlock);
    q.kRow = s * round_up(g.Nk, kKRowPad);
    q.qSlot = s * ceil_div(g.Nq, kQBlock);
    q.kSlot = s * ceil_div(g.Nk, kKBlock);
  }
  return q;
}

// Where the scale of row r (counted within its sequence) of Q head h lies in Workspace::qs, and of key j of kv head
// hk in Workspace::ks.
__host__ __device__ inline int64_t q_scale_slot(const Geometry& g, const Sequence& sq, int h, int r) {
  return ((int64_t(h) * g.qSlots + sq.qSlot) << (kQBlockShift - g.qShift)) + (r >> g.qShift);
}
__host__ __device__ inline int64_t k_scale_slot(const Geometry& g, const Sequence& sq, int hk, int j) {
  return ((int64_t(hk) * g.kSlots + sq.kSlot) << (kKBlockShift - g.kShift)) + (g.kThread ? k_thread_group(j) : j >> g.kShift);
}

// Whether a call asks for a granularity finer than the default blocks: the kernels then run their FINE instantiations.
__host__ __device__ inline bool fine_granularity(const Geometry& g) {
  return g.qShift != kQBlockShift || g.kShift != kKBlockShift;
}

// The packed workspace: device addresses of each region.
struct Workspace {
  float* kpart;    // [S·Hkv][kmeanChunks][DP] sums of K over token chunks (zeros past D and past the sequence)
  int8_t* qi;      // [Hq][rowsQ][DP]  round(Q·smScale·log2e / sQ)
  int8_t* ki;      // [Hkv][rowsK][DP] round((K − mean) / sK)
  uint16_t* vh;    // [Hkv][rowsK][DP] V as f16 bits
  float* qs;       // [Hq][qSlots << (7 − qShift)]  sQ per 2^qShift tokens (a 128-token block by default)
  float* ks;       // [Hkv][kSlots << (6 − kShift)] sK per 2^kShift tokens (a 64-token block by default); for the
                   // sm80 kernel's f16 sums, a block's first is negated where its V is past kF16BlockVLimit
  float* qm;       // [Hq][rowsQ]   smScale·(q·mean(K)), only for the LSE
  // "int8" P·V only (v_absmax.cu, v_quantize.cu):
  int8_t* vi;      // [Hkv][rowsK][DP] round(V / sV) in the Hopper layout of hopper_layout.h (in vh's bytes)
  float* vpart;    // [S·Hkv][kmeanChunks][DP] max |V| over token chunks
  float* vs;       // [S·Hkv][DP] sV = max |V| / 127 per channel of each (sequence, kv head)
};

// A strided input or output tensor, strides in elements as (b, h, n, d).
struct TensorRef {
  uint64_t ptr;
  int64_t sb, sh, sn, sd;
  int dtype;       // sa_dtype
  bool vec4;       // 4 consecutive channels at a multiple of 4 are one aligned vector load (d stride 1, D % 4 == 0)
};

}  // namespace sa
