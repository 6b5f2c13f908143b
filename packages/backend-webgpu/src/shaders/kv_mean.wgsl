// A KV cache's smoothing mean (DESIGN §2 step 1, decode spec): μ[b, kv head, c] = Σ_t K[t, c] / n over the n rows
// of the cache's first append, stored f32 as [b·Hkv, DP/4] quads (padding channels 0). Core sums in f64; WGSL has
// no f64, so every lane keeps a Kahan-compensated f32 sum and the 16 token lanes are added in fixed order the same
// way (deterministic, no atomics). It runs once per cache (and never without smoothing), so it favours accuracy.
// Grid: (DP/64 channel groups, B·Hkv). Workgroup 16 × 16: lane x owns channels 4x … 4x+3 of the group, lane y the
// tokens y, y+16, ….
// Knobs: none (a prefill pass; the lanes read whole 128-byte rows per warp as k_mean.wgsl does).

const LANES: u32 = 16u;

//#include "generated/kv_mean_params.wgsl"

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> mean: array<vec4<f32>>; // [b, kv head, DP/4]
@group(0) @binding(2) var<uniform> params: Params;

//#include "lib/load_element.wgsl"

var<workgroup> sums: array<vec4<f32>, LANES * LANES>;
var<workgroup> errs: array<vec4<f32>, LANES * LANES>;

// One Kahan step: (sum, err) after adding x.
fn kahan(sum: vec4<f32>, err: vec4<f32>, x: vec4<f32>) -> array<vec4<f32>, 2> {
  let y = x - err;
  let t = sum + y;
  return array<vec4<f32>, 2>(t, (t - sum) - y);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let bh = wg.y;
  let c = wg.x * 64u + lid.x * 4u;
  let st = params.strides;
  let row0 = params.base + (bh / params.heads) * st.x + (bh % params.heads) * st.y;
  var sum = vec4<f32>(0.0);
  var err = vec4<f32>(0.0);
  for (var t = lid.y; t < params.tokens; t += LANES) {
    let k = kahan(sum, err, load4(row0 + t * st.z, c, st.w, params.d));
    sum = k[0];
    err = k[1];
  }
  sums[lid.y * LANES + lid.x] = sum;
  errs[lid.y * LANES + lid.x] = err;
  workgroupBarrier();
  if (lid.y == 0u) {
    var total = vec4<f32>(0.0);
    var e = vec4<f32>(0.0);
    for (var i = 0u; i < LANES; i++) {
      let k = kahan(total, e, sums[i * LANES + lid.x] - errs[i * LANES + lid.x]);
      total = k[0];
      e = k[1];
    }
    mean[bh * (params.dp / 4u) + c / 4u] = total / f32(params.tokens);
  }
}
