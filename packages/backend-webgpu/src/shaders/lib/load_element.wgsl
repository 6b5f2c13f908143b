// Elements of a caller's tensor as f32, whatever its element type: the buffer is read as u32 words so one shader
// serves f32, f16 and bf16 without the shader-f16 feature. DTYPE: 0 f32, 1 f16, 2 bf16.
// VEC (set by the host): channels are adjacent (d stride 1), D is a multiple of 4 and, for the 16-bit types, every
// row starts on an even element, so four channels from a multiple of 4 are one or two whole words.
override DTYPE: u32 = 0u;
override VEC: bool = false;

fn load_element(i: u32) -> f32 {
  if (DTYPE == 0u) {
    return bitcast<f32>(src[i]);
  }
  let word = src[i >> 1u];
  let half = (word >> ((i & 1u) * 16u)) & 0xffffu;
  if (DTYPE == 1u) {
    return unpack2x16float(half).x;
  }
  return bitcast<f32>(half << 16u);
}

// Channels c … c+3 (c a multiple of 4) of the row starting at element `row`; channels from d on read as 0.
fn load4(row: u32, c: u32, sd: u32, d: u32) -> vec4<f32> {
  if (VEC) {
    if (c >= d) {
      return vec4<f32>(0.0);
    }
    let i = row + c;
    if (DTYPE == 0u) {
      return bitcast<vec4<f32>>(vec4<u32>(src[i], src[i + 1u], src[i + 2u], src[i + 3u]));
    }
    let lo = src[i >> 1u];
    let hi = src[(i >> 1u) + 1u];
    if (DTYPE == 1u) {
      return vec4<f32>(unpack2x16float(lo), unpack2x16float(hi));
    }
    return bitcast<vec4<f32>>(vec4<u32>(lo << 16u, lo & 0xffff0000u, hi << 16u, hi & 0xffff0000u));
  }
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (c + j < d) {
      v[j] = load_element(row + (c + j) * sd);
    }
  }
  return v;
}
