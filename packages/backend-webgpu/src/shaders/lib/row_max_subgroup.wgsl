// attention_int8.wgsl's per-tile row maxima across the 16 tx lanes of a row group, in registers: the 16 lanes are
// invocations ty·16 … ty·16 + 15, which the host checked at load (acquire.ts, subgroupCheck) share one subgroup at
// lanes (invocation index mod subgroup size), so four xor shuffles give each lane the maximum of its rows, with no
// workgroup memory and no barrier. Chosen where the device has subgroups of at least 16 lanes laid out that way;
// row_max_shared.wgsl otherwise.
fn row_max_put(part: vec4<f32>, at: u32) {}

fn row_max_sync() {}

fn row_max_get(part: vec4<f32>, first: u32, ps: u32) -> vec4<f32> {
  var mx = part;
  mx = max(mx, subgroupShuffleXor(mx, 1u));
  mx = max(mx, subgroupShuffleXor(mx, 2u));
  mx = max(mx, subgroupShuffleXor(mx, 4u));
  mx = max(mx, subgroupShuffleXor(mx, 8u));
  return mx;
}
