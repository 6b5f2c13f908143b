// hopper_layout.h — how the pre-pass arranges the workspace for the Hopper kernel (attention_sm90.cu).
// wgmma reads shared-memory tiles in a swizzled order, and the bulk copy engine copies bytes as they are; so the
// pre-pass writes every tile already in the order wgmma wants, and one bulk copy per tile moves it:
//   Qi, Ki  rows of DP bytes (one row per token, as for sm80), but the 16-byte chunk c of row r is stored at
//           chunk swizzle_chunk(c, r, DP), r counted from the sequence's first token;
//   V       plain f16 rows of DP channels, or not written at all when V is f16 already: the kernel reads V through a
//           tensor map (the copy engine swizzles it on the way in) and multiplies it N-major (attention_sm90.cu).
// Used for head dims 64 and 128 on compute capability 9.0; the rest runs the sm80 kernel on the plain layout.
#pragma once

namespace sa {

constexpr int kHopperKeys = 128;  // keys per K/V tile of the Hopper kernel: two K quantization blocks

// The swizzle of wgmma's 64- and 128-byte modes: the chunk index XOR the row's position inside its 1024-byte atom.
__host__ __device__ constexpr int swizzle_chunk(int chunk, int row, int rowBytes) {
  return chunk ^ ((row * rowBytes >> 7) & (rowBytes / 16 - 1));
}

constexpr bool hopper_head_dim(int DP) { return DP == 64 || DP == 128; }

}  // namespace sa
