// Four output channels (c … c+3, c a multiple of 4, adjacent in memory, element `at` a multiple of 2 for f32 or of
// 4 for the 16-bit types) stored in the includer's OUT_DTYPE (0 f32, 1 f16, 2 bf16, rounded to nearest even) into
// its `dst: array<vec2<u32>>`. Used by attention_int8.wgsl and decode_merge.wgsl where they store the output
// themselves.

fn bf16_bits(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  return ((bits + 0x7fffu + ((bits >> 16u) & 1u)) >> 16u) & 0xffffu;
}

fn store_out_quad(at: u32, o: vec4<f32>) {
  if (OUT_DTYPE == 0u) {
    let bits = bitcast<vec4<u32>>(o);
    dst[at / 2u] = bits.xy;
    dst[at / 2u + 1u] = bits.zw;
  } else if (OUT_DTYPE == 1u) {
    dst[at / 4u] = vec2<u32>(pack2x16float(o.xy), pack2x16float(o.zw));
  } else {
    dst[at / 4u] = vec2<u32>(bf16_bits(o.x) | (bf16_bits(o.y) << 16u), bf16_bits(o.z) | (bf16_bits(o.w) << 16u));
  }
}
