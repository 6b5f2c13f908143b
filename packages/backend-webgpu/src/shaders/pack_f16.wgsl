// Stage V conversion (and Q/K/V staging): a caller's tensor (any element type, layout and strides) to f16 [b, head,
// token, DP], four channels (two u32 words) per thread; channels D..DP-1 are 0. The destination holds dstTokens rows
// per (b, head) and the source's tokens land from row dstFirst on (a KV cache's V appends at its length; a whole
// tensor has dstTokens = tokens). This is V's conversion to f16 (DESIGN §2 step 5), and Q/K/V for the exact kernel.
// Values round to f16 as core rounds them: 65520 and beyond become ±∞, NaN stays NaN (to_f16). Adjacent threads take
// adjacent channel quads, so reads and writes are whole rows per warp. The grid is 2-D only because one dimension
// holds at most 65535 workgroups.

//#include "generated/pack_f16_params.wgsl"

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec2<u32>>;
@group(0) @binding(2) var<uniform> params: Params;
// [b, head]: 1 where the head holds some |x| over WIDE_ABOVE (V the attention kernels sum in f16 blocks and
// nothing on the host has scanned: device V). The host clears it; 0 in WIDE_ABOVE writes nothing.
@group(0) @binding(3) var<storage, read_write> wide: array<atomic<u32>>;

override WIDE_ABOVE: f32 = 0.0;

//#include "lib/load_element.wgsl"

const F16_MAX: f32 = 65504.0;

// Two values as f16 bits, rounded to nearest even as core's f16 rounding does: finite values from 65520 on (and ±∞)
// become ±∞, NaN stays NaN, so that V beyond f16 shows in the output instead of saturating silently. Those lanes are
// written bit by bit (told by their bits, which a compiler may not assume away as it may `x != x`), since
// pack2x16float leaves values outside f16's finite range undefined; the rest are clamped into it first.
fn to_f16(a: vec2<f32>) -> u32 {
  var w = pack2x16float(clamp(a, vec2<f32>(-F16_MAX), vec2<f32>(F16_MAX)));
  for (var i = 0u; i < 2u; i++) {
    let b = bitcast<u32>(a[i]);
    let mag = b & 0x7fffffffu;
    if (mag >= 0x477ff000u) { // 65520: half-way between 65504 and 2^16 rounds up, past f16's largest
      let h = ((b >> 16u) & 0x8000u) | 0x7c00u | select(0u, 0x200u, mag > 0x7f800000u);
      w = (w & ~(0xffffu << (16u * i))) | (h << (16u * i));
    }
  }
  return w;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * params.rowPitch + gid.x;
  if (i >= params.quads) {
    return;
  }
  let perRow = params.dp / 4u;
  let c = (i % perRow) * 4u;
  let token = (i / perRow) % params.tokens;
  let bh = i / (perRow * params.tokens);
  let st = params.strides;
  let row = params.base + (bh / params.heads) * st.x + (bh % params.heads) * st.y + token * st.z;
  let raw = load4(row, c, st.w, params.d);
  // Tested first: where a whole head is large, a read per thread costs less than a write per thread to one word.
  if (WIDE_ABOVE > 0.0 && any(abs(raw) > vec4<f32>(WIDE_ABOVE)) && atomicLoad(&wide[bh]) == 0u) {
    atomicStore(&wide[bh], 1u);
  }
  dst[(bh * params.dstTokens + params.dstFirst + token) * perRow + c / 4u] = vec2<u32>(to_f16(raw.xy), to_f16(raw.zw));
}
