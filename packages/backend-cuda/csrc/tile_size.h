// tile_size.h — tile shapes shared by the pre-pass and the attention kernel.
// Q and K quantization blocks are part of the algorithm (docs/DESIGN.md §2): a CTA covers exactly one Q block, and one K
// tile is exactly one K block, so each S tile has a single dequantization scale sQ·sK.
// The block sizes themselves are core's (kQBlock = Q_BLOCK, kKBlock = K_BLOCK), from the generated header.
#pragma once
#include "generated/core_constants.h"

namespace sa {

// K/V rows of each sequence are padded (with zeros) to a multiple of this, so the Hopper kernel's 128-key tiles never
// read past a sequence.
constexpr int kKRowPad = 128;
static_assert(kKRowPad % kKBlock == 0, "the K row padding must be whole K blocks (the pre-pass counts blocks by it)");

// log2 of the block sizes (scale slots are indexed by shifts) and of the finer granularities' groups; "thread"'s
// 2^kKThreadShift keys a K scale are not adjacent: k_thread_group numbers them.
constexpr int kQBlockShift = 7, kKBlockShift = 6, kQWarpShift = 4, kKRowShift = 4, kKThreadShift = 4;
static_assert((1 << kQBlockShift) == kQBlock && (1 << kKBlockShift) == kKBlock, "block sizes are powers of two");
static_assert((1 << kQWarpShift) == kQWarpBlock && (1 << kKRowShift) == kKRowBlock, "group sizes are powers of two");
static_assert(kKBlock / kKThreadSpan * kKThreadGroups == 1 << (kKBlockShift - kKThreadShift) && kKBlock % kKThreadSpan == 0 &&
                  kKThreadGroups == 4,
              "\"thread\": four groups a span (k_thread_group's pairs of 8), whole spans a K block");

// The K scale of key j at "thread" (j counted from the block's, or the sequence's, first key): its span's group
// (j mod 8) / 2, the columns 2t and 2t + 1 of each n8 tile that lane t of a quad holds in an MMA accumulator.
__host__ __device__ constexpr int k_thread_group(int j) { return j / kKThreadSpan * kKThreadGroups + ((j & 7) >> 1); }

// Head dims with a specialised kernel; any D <= 256 is padded (with zeros) up to the next of these.
constexpr int padded_head_dim(int d) { return d <= 64 ? 64 : d <= 96 ? 96 : d <= 128 ? 128 : 256; }

}  // namespace sa
