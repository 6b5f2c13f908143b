// attention_int8.wgsl's per-tile row maxima across the 16 tx lanes of a row group, by subgroup shuffles. The 16 tx
// are invocations ty·16 … ty·16 + 15, at lanes (invocation index mod subgroup size): the host checked that numbering
// and the shuffles at load (acquire.ts, subgroupCheck). Correct for any subgroup size from 4 lanes (WebGPU's least)
// up, whichever size the compiler picks for this pipeline, even mixed within a workgroup:
//   every subgroup of 16 lanes or more (NVIDIA 32, AMD 32/64): four xor shuffles give each lane its rows' maxima,
//     in registers, and no barrier;
//   any narrower one (SwiftShader 4, Intel 8): two xor shuffles give each lane the maxima of its aligned four tx,
//     which meet through `rowParts` (one barrier, then four reads instead of the workgroup path's sixteen).
// row_max_setup finds out which at the start, the same answer for the whole workgroup (so the barrier in main stays
// in uniform control flow); row_max_shared.wgsl is the path without subgroups.

// Set by any invocation whose subgroup has fewer than 16 active lanes; then copied for workgroupUniformLoad.
var<workgroup> rowMaxNarrowFlag: atomic<u32>;
var<workgroup> rowMaxNarrow: u32;

// True where the row maxima meet through rowParts (a subgroup narrower than 16 lanes in this workgroup): main then
// puts a barrier between row_max_put and row_max_get. Uniform (a workgroupUniformLoad), so naga and Tint both take
// that barrier; three barriers, once per workgroup.
fn row_max_setup(lid: u32) -> bool {
  // Active lanes of this subgroup: min(subgroup size, WG), every subgroup full (WG and the size are powers of two).
  let lanes = subgroupAdd(1u);
  if (lid == 0u) {
    atomicStore(&rowMaxNarrowFlag, 0u); // not left to the implementation's zeroing of workgroup memory
  }
  workgroupBarrier();
  if (lanes < 16u) {
    atomicOr(&rowMaxNarrowFlag, 1u);
  }
  workgroupBarrier();
  if (lid == 0u) {
    rowMaxNarrow = atomicLoad(&rowMaxNarrowFlag);
  }
  return workgroupUniformLoad(&rowMaxNarrow) != 0u;
}

// The invocation's partial maxima `part` of four rows, reduced over its subgroup: over all 16 tx (wide subgroups),
// or over its aligned four tx and stored at `at` for row_max_get (narrow). The shuffles run in uniform control flow:
// `viaMemory` is row_max_setup's answer.
fn row_max_put(part: vec4<f32>, at: u32, viaMemory: bool) -> vec4<f32> {
  var mx = max(part, subgroupShuffleXor(part, 1u));
  mx = max(mx, subgroupShuffleXor(mx, 2u));
  if (viaMemory) {
    rowParts[at] = mx;
  } else {
    mx = max(mx, subgroupShuffleXor(mx, 4u));
    mx = max(mx, subgroupShuffleXor(mx, 8u));
  }
  return mx;
}

// The rows' maxima over all 16 tx: row_max_put's result (wide), or the four quads' maxima from rowParts (narrow;
// `first` the rows' slot of tx 0, `ps` the vectors per tx).
fn row_max_get(part: vec4<f32>, first: u32, ps: u32, viaMemory: bool) -> vec4<f32> {
  if (!viaMemory) {
    return part;
  }
  var mx = rowParts[first];
  for (var i = 1u; i < 4u; i++) { // unroll
    mx = max(mx, rowParts[i * 4u * ps + first]);
  }
  return mx;
}
