// The attention kernels' f32 result [b, head, token, DP] to the caller's output: element type OUT_DTYPE
// (0 f32, 1 f16, 2 bf16, both 16-bit types rounded to nearest even), layout HND or NHD (NHD = 1), contiguous.
// One thread per output word: one element for f32, two for the 16-bit types.

override OUT_DTYPE: u32 = 0u;
override NHD: bool = false;

struct Params {
  heads: u32,
  tokens: u32,
  d: u32,
  dp: u32,
  elements: u32,
  rowPitch: u32,
}

@group(0) @binding(0) var<storage, read> result: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

// Value of output element e (in the output layout's order).
fn element(e: u32) -> f32 {
  let c = e % params.d;
  var h: u32;
  var n: u32;
  var b: u32;
  if (NHD) {
    h = (e / params.d) % params.heads;
    n = (e / (params.d * params.heads)) % params.tokens;
    b = e / (params.d * params.heads * params.tokens);
  } else {
    n = (e / params.d) % params.tokens;
    h = (e / (params.d * params.tokens)) % params.heads;
    b = e / (params.d * params.tokens * params.heads);
  }
  return result[((b * params.heads + h) * params.tokens + n) * params.dp + c];
}

fn bf16_bits(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  return ((bits + 0x7fffu + ((bits >> 16u) & 1u)) >> 16u) & 0xffffu;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let w = gid.y * params.rowPitch + gid.x;
  let perWord = select(2u, 1u, OUT_DTYPE == 0u);
  let e = w * perWord;
  if (e >= params.elements) {
    return;
  }
  if (OUT_DTYPE == 0u) {
    dst[w] = bitcast<u32>(element(e));
    return;
  }
  let a = element(e);
  let b = select(0.0, element(e + 1u), e + 1u < params.elements);
  if (OUT_DTYPE == 1u) {
    dst[w] = pack2x16float(vec2<f32>(a, b));
  } else {
    dst[w] = bf16_bits(a) | (bf16_bits(b) << 16u);
  }
}
