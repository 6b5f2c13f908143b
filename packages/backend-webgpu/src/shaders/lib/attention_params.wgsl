// What both attention kernels (attention_int8.wgsl, attention_exact.wgsl via lib/attention_common.wgsl) share with
// the host: the uniform block, the "no key yet" sentinel, and which key tiles a workgroup visits. key_tiles reads
// the includer's overrides BQ, BK and CAUSAL.
//#include "lib/no_key.wgsl"

//#include "generated/constants.wgsl"
//#include "generated/attention_params.wgsl"

// Tiles of keys the workgroup must visit: all of the segment's, or up to the last one its last row may see.
fn key_tiles(rowBase: u32, nq: u32, nk: u32) -> u32 {
  var keys = nk;
  if (CAUSAL) {
    let lastRow = i32(min(rowBase + BQ, nq)) - 1;
    keys = u32(clamp(lastRow + i32(nk) - i32(nq) + 1, 0, i32(nk)));
  }
  return (keys + BK - 1u) / BK;
}

// Whether the key tile from key0 hides any key from any row of the query tile from rowBase: past the segment's
// keys, or (causal) right of the diagonal. Tiles wholly inside skip the per-element mask.
fn tile_cut(rowBase: u32, key0: u32, nq: u32, nk: u32) -> bool {
  var cut = key0 + BK > nk;
  if (CAUSAL) {
    cut = cut || i32(key0 + BK - 1u) > i32(rowBase) + i32(nk) - i32(nq);
  }
  return cut;
}
