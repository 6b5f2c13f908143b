// A caller's tensor (any element type, layout and strides) to contiguous f16 [b, head, token, DP], two per u32;
// channels D..DP-1 are 0. This is V's conversion to f16 (DESIGN §2 step 5), and Q/K/V for the exact kernel.
// Values beyond ±65504 saturate (f16 has no room for them; leaving them to pack2x16float would be undefined).
// One thread per output word; the grid is 2-D only because one dimension holds at most 65535 workgroups.

struct Params {
  strides: vec4<u32>, // element strides of the source as (b, h, n, d)
  base: u32,
  heads: u32,
  tokens: u32,
  d: u32,
  dp: u32,
  words: u32,         // output words in all
  rowPitch: u32,      // workgroups per grid row × 256
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

//#include "lib/load_element.wgsl"

const F16_MAX: f32 = 65504.0;

fn channel(row: u32, c: u32) -> f32 {
  if (c >= params.d) {
    return 0.0;
  }
  return clamp(load_element(row + c * params.strides.w), -F16_MAX, F16_MAX);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let w = gid.y * params.rowPitch + gid.x;
  if (w >= params.words) {
    return;
  }
  let perRow = params.dp / 2u;
  let c = (w % perRow) * 2u;
  let token = (w / perRow) % params.tokens;
  let bh = w / (perRow * params.tokens);
  let st = params.strides;
  let row = params.base + (bh / params.heads) * st.x + (bh % params.heads) * st.y + token * st.z;
  dst[w] = pack2x16float(vec2<f32>(channel(row, c), channel(row, c + 1u)));
}
