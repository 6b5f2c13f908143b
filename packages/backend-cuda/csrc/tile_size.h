// tile_size.h — tile shapes shared by the pre-pass and the attention kernel.
// Q and K quantization blocks are part of the algorithm (docs/DESIGN.md §2): a CTA covers exactly one Q block, and one K
// tile is exactly one K block, so each S tile has a single dequantization scale sQ·sK.
#pragma once

namespace sa {

constexpr int kQBlock = 128;  // tokens per Q quantization block = query rows per CTA
constexpr int kKBlock = 64;   // tokens per K quantization block = keys per K tile
// K/V rows of each sequence are padded (with zeros) to a multiple of this, so the Hopper kernel's 128-key tiles never
// read past a sequence.
constexpr int kKRowPad = 128;

// Head dims with a specialised kernel; any D <= 256 is padded (with zeros) up to the next of these.
constexpr int padded_head_dim(int d) { return d <= 64 ? 64 : d <= 96 ? 96 : d <= 128 ? 128 : 256; }

}  // namespace sa
