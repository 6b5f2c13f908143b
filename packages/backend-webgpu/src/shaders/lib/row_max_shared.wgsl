// attention_int8.wgsl's per-tile row maxima across the 16 tx lanes of a row group, through workgroup memory (every
// adapter): each invocation puts its partial maxima of four rows in rowParts, one barrier (in main: row_max_setup
// says true), then each reads the 16 lanes' parts of its rows. row_max_subgroup.wgsl is the same step by subgroup
// shuffles where the device has subgroups. `at`: the invocation's slot (tx·ps + ty·rp + g, ps = BQ/4 + 1 vectors
// per tx), `first` the rows' slot of tx 0; the caller passes them computed from its locals. `viaMemory` is always
// true here.

fn row_max_setup(lid: u32) -> bool {
  return true;
}

fn row_max_put(part: vec4<f32>, at: u32, viaMemory: bool) -> vec4<f32> {
  rowParts[at] = part;
  return part;
}

fn row_max_get(part: vec4<f32>, first: u32, ps: u32, viaMemory: bool) -> vec4<f32> {
  var mx = rowParts[first];
  for (var i = 1u; i < 16u; i++) { // unroll
    mx = max(mx, rowParts[i * ps + first]);
  }
  return mx;
}
