// Element `i` of a caller's tensor as f32, whatever its element type: the buffer is read as u32 words so one shader
// serves f32, f16 and bf16 without the shader-f16 feature. DTYPE: 0 f32, 1 f16, 2 bf16.
override DTYPE: u32 = 0u;

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
