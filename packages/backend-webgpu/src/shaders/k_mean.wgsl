// K smoothing statistics (DESIGN §2 step 1): the mean of K over the tokens of each segment, per kv head and channel.
// Grid: (channel groups of 64, kv heads, segments). Workgroup 64 channels × 4 token lanes: lane y sums tokens
// y, y+4, …, and the four partial sums meet in workgroup memory. Channels D..DP-1 (padding) get 0.
//#include "lib/segment.wgsl"

struct Params {
  strides: vec4<u32>, // element strides of K as (b, h, n, d)
  base: u32,          // element offset of K in its buffer
  heads: u32,
  d: u32,
  dp: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> segs: array<Segment>;
@group(0) @binding(2) var<storage, read_write> kMean: array<f32>; // [segment, head, DP]
@group(0) @binding(3) var<uniform> params: Params;

//#include "lib/load_element.wgsl"

const LANES: u32 = 4u;
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(64, 4)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let seg = segs[wg.z];
  let h = wg.y;
  let c = wg.x * 64u + lid.x;
  let st = params.strides;
  var sum = 0.0;
  if (c < params.d) {
    let row0 = params.base + seg.b * st.x + h * st.y + c * st.w;
    // Four tokens per step into four sums: their loads are in flight together instead of one after another.
    var s4 = vec4<f32>(0.0);
    var n = lid.y;
    for (; n + 3u * LANES < seg.nk; n += 4u * LANES) {
      s4 += vec4<f32>(
        load_element(row0 + (seg.k0 + n) * st.z),
        load_element(row0 + (seg.k0 + n + LANES) * st.z),
        load_element(row0 + (seg.k0 + n + 2u * LANES) * st.z),
        load_element(row0 + (seg.k0 + n + 3u * LANES) * st.z),
      );
    }
    for (; n < seg.nk; n += LANES) {
      s4.x += load_element(row0 + (seg.k0 + n) * st.z);
    }
    sum = (s4.x + s4.y) + (s4.z + s4.w);
  }
  partial[lid.y * 64u + lid.x] = sum;
  workgroupBarrier();
  if (lid.y == 0u && c < params.dp) {
    let total = partial[lid.x] + partial[64u + lid.x] + partial[128u + lid.x] + partial[192u + lid.x];
    kMean[(wg.z * params.heads + h) * params.dp + c] = select(0.0, total / f32(max(seg.nk, 1u)), c < params.d);
  }
}
