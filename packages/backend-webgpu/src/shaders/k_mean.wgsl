// K smoothing statistics (DESIGN §2 step 1), first half: per (segment, kv head) the tokens are split into CHUNKS
// equal runs and each run's sum over its tokens is written per channel; quantize_int8 adds the CHUNKS partial sums
// in fixed order (deterministic, no atomics) and divides by the token count. Splitting the tokens spreads a whole
// K tensor's loads over the GPU (one workgroup per head and 64 channels would leave most of it idle).
// Grid: (channel groups of 64 × CHUNKS, kv heads, segments). Workgroup 16 word lanes × 16 token lanes: lane x reads
// channels 4x … 4x+3 (one or two words, so a warp reads two whole 128-byte rows), lane y the run's tokens y, y+16, …;
// the 16 token lanes meet in workgroup memory. Padding channels (D … DP−1) sum to 0.
//#include "lib/segment.wgsl"

const CHUNKS: u32 = 16u; // partial sums per (segment, head): quantize_int8 reads this many
const LANES: u32 = 16u;

//#include "generated/k_mean_params.wgsl"

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> segs: array<Segment>;
@group(0) @binding(2) var<storage, read_write> kPartial: array<vec4<f32>>; // [segment, head, CHUNKS, DP/4]
@group(0) @binding(3) var<uniform> params: Params;

//#include "lib/load_element.wgsl"

var<workgroup> partial: array<vec4<f32>, LANES * LANES>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let seg = segs[wg.z];
  let h = wg.y;
  let groups = params.dp / 64u;
  let chunk = wg.x / groups;
  let c = (wg.x % groups) * 64u + lid.x * 4u;
  let len = (seg.nk + CHUNKS - 1u) / CHUNKS;
  let end = min(seg.nk, (chunk + 1u) * len);
  let st = params.strides;
  let row0 = params.base + seg.b * st.x + h * st.y + (seg.k0 + chunk * len) * st.z;
  // Two tokens per step into two sums: their loads are in flight together.
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  var n = chunk * len + lid.y;
  var at = row0 + lid.y * st.z;
  let step = LANES * st.z;
  for (; n + LANES < end; n += 2u * LANES) {
    a += load4(at, c, st.w, params.d);
    b += load4(at + step, c, st.w, params.d);
    at += 2u * step;
  }
  if (n < end) {
    a += load4(at, c, st.w, params.d);
  }
  partial[lid.y * LANES + lid.x] = a + b;
  workgroupBarrier();
  if (lid.y == 0u) {
    var total = vec4<f32>(0.0);
    for (var i = 0u; i < LANES; i++) {
      total += partial[i * LANES + lid.x];
    }
    kPartial[((wg.z * params.heads + h) * CHUNKS + chunk) * (params.dp / 4u) + c / 4u] = total;
  }
}
