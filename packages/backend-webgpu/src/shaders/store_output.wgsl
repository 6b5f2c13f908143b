// The attention kernels' f32 result [b, head, token, DP] to the output tensor: element type OUT_DTYPE (0 f32, 1 f16,
// 2 bf16, the 16-bit types rounded to nearest even), at the output's own element offset and (b, h, n, d) strides, so
// a caller's strided `out` is written in place. Threads walk the result in order (reads coalesce).
// PAIRS: one thread per two channels sharing a u32 word (16-bit output, d stride 1, even row starts): a plain store.
// Otherwise one thread per element: f32 a plain store; a lone 16-bit half is merged into its word with atomicAnd +
// atomicOr, which leave the other half (another element, or memory that is not ours) as it is.

override OUT_DTYPE: u32 = 0u;
override PAIRS: bool = false;

//#include "generated/store_output_params.wgsl"

@group(0) @binding(0) var<storage, read> result: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> params: Params;

fn bits16(x: f32) -> u32 {
  if (OUT_DTYPE == 1u) {
    return pack2x16float(vec2<f32>(x, 0.0));
  }
  let bits = bitcast<u32>(x);
  return ((bits + 0x7fffu + ((bits >> 16u) & 1u)) >> 16u) & 0xffffu;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.y * params.rowPitch + gid.x;
  if (t >= params.threads) {
    return;
  }
  let perRow = select(params.d, params.d / 2u, PAIRS);
  let row = t / perRow;
  let c = (t % perRow) * select(1u, 2u, PAIRS);
  let n = row % params.tokens;
  let h = (row / params.tokens) % params.heads;
  let b = row / (params.tokens * params.heads);
  let src = row * params.dp + c;
  let s = params.strides;
  let at = params.base + b * s.x + h * s.y + n * s.z + c * s.w;
  if (OUT_DTYPE == 0u) {
    atomicStore(&dst[at], bitcast<u32>(result[src]));
  } else if (PAIRS) {
    atomicStore(&dst[at / 2u], bits16(result[src]) | (bits16(result[src + 1u]) << 16u));
  } else {
    let shift = (at & 1u) * 16u;
    atomicAnd(&dst[at / 2u], ~(0xffffu << shift));
    atomicOr(&dst[at / 2u], bits16(result[src]) << shift);
  }
}
