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

// log2 of the block sizes (scale slots are indexed by shifts) and of the finer granularities' groups.
constexpr int kQBlockShift = 7, kKBlockShift = 6, kQWarpShift = 4, kKRowShift = 4;
static_assert((1 << kQBlockShift) == kQBlock && (1 << kKBlockShift) == kKBlock, "block sizes are powers of two");
static_assert((1 << kQWarpShift) == kQWarpBlock && (1 << kKRowShift) == kKRowBlock, "group sizes are powers of two");

// Head dims with a specialised kernel; any D <= 256 is padded (with zeros) up to the next of these.
constexpr int padded_head_dim(int d) { return d <= 64 ? 64 : d <= 96 ? 96 : d <= 128 ? 128 : 256; }

}  // namespace sa
