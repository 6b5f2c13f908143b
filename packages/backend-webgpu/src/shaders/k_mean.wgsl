// K smoothing statistics (DESIGN §2 step 1): the mean of K over the tokens of each segment, per kv head and channel.
// Grid: (channel groups of 16, kv heads, segments). Workgroup 16 channels × 16 token lanes: lane y sums tokens
// y, y+16, …, eight loads in flight per step, and the 16 partial sums meet in workgroup memory. Channels D..DP-1
// (padding) get 0. 16 × 16 rather than 64 channels × 4 lanes: four times the workgroups and lanes, so the
// loads of a whole K tensor are spread over the GPU (64 workgroups for H = 32, D = 128 left most of it idle).
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

const CHANNELS: u32 = 16u;
const LANES: u32 = 16u;
var<workgroup> partial: array<f32, CHANNELS * LANES>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let seg = segs[wg.z];
  let h = wg.y;
  let c = wg.x * CHANNELS + lid.x;
  let st = params.strides;
  var sum = 0.0;
  if (c < params.d) {
    let row0 = params.base + seg.b * st.x + h * st.y + (seg.k0 + lid.y) * st.z + c * st.w;
    let step = LANES * st.z; // elements from one of the lane's tokens to its next
    // Eight tokens per step into eight sums: their loads are in flight together instead of one after another.
    var a = vec4<f32>(0.0);
    var b = vec4<f32>(0.0);
    var n = lid.y;
    var at = row0;
    for (; n + 7u * LANES < seg.nk; n += 8u * LANES) {
      a += vec4<f32>(load_element(at), load_element(at + step), load_element(at + 2u * step), load_element(at + 3u * step));
      b += vec4<f32>(load_element(at + 4u * step), load_element(at + 5u * step), load_element(at + 6u * step), load_element(at + 7u * step));
      at += 8u * step;
    }
    for (; n < seg.nk; n += LANES) {
      a.x += load_element(at);
      at += step;
    }
    let s4 = a + b;
    sum = (s4.x + s4.y) + (s4.z + s4.w);
  }
  partial[lid.y * CHANNELS + lid.x] = sum;
  workgroupBarrier();
  if (lid.y == 0u && c < params.dp) {
    var total = 0.0;
    for (var i = 0u; i < LANES; i++) {
      total += partial[i * CHANNELS + lid.x];
    }
    kMean[(wg.z * params.heads + h) * params.dp + c] = select(0.0, total / f32(max(seg.nk, 1u)), c < params.d);
  }
}
