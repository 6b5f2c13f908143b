// heuristics.h — launch choices for the attention kernel, per padded head dim.
// kMTiles: m16 tiles (16 query rows each) per warp. 2 (4 warps per 128-row CTA) halves the shared-memory reads per
//   FLOP against 1 (8 warps), at the price of registers: at D = 256 two tiles would need 256 f32 accumulators per
//   thread, so it uses one.
// kQInRegisters: keep Q's fragments in registers for the whole K loop (no shared reads for Q) or reload them from
//   shared memory per tile (frees 8·D/32·kMTiles registers). At D = 128 with two m-tiles, keeping them spills.
// kStages: K/V pipeline depth (see Heuristics).
// So D = 128 runs 2 m-tiles with Q reloaded and 3 stages: Q in registers spills there, one m-tile doubles the shared
//   reads per FLOP, and two stages leave loads exposed (the timings are in NOTES.md).
#pragma once
#include <cstdlib>
#include <cstring>
#include "tile_size.h"

namespace sa {

template <int DP, int MT>
struct AttentionTraits {
  static constexpr int kMTiles = MT;
  static constexpr int kWarps = kQBlock / (16 * MT);  // warps per CTA, covering one Q block
  static constexpr int kThreads = 32 * kWarps;
};

template <int DP>
struct Heuristics {
  static constexpr int kMTiles = DP <= 128 ? 2 : 1;
  static constexpr bool kQInRegisters = DP != 128;
  // K/V pipeline depth: 3 (two tiles in flight, one barrier per tile) where shared memory allows it on every
  // sm80+ part (D ≤ 128: ≤ 99 KB); D = 256 keeps 2 with Q aliasing the second stage (137 KB).
  static constexpr int kStages = DP <= 128 ? 3 : 2;
};

// SAGEATTN_CUDA_KERNEL=sm80 keeps Hopper GPUs on the mma.sync kernel (to compare the two on one card).
inline bool force_sm80() {
  static const bool v = [] {
    const char* s = std::getenv("SAGEATTN_CUDA_KERNEL");
    return s != nullptr && std::strcmp(s, "sm80") == 0;
  }();
  return v;
}

}  // namespace sa
