// For attention_int8.wgsl's register tiles on the paths without shader-f16 (pv_f16emu.wgsl, pv_f32.wgsl): P4 holds
// four P values of one key (four query rows), rounded to f16 and packed two per word; H4 is four f16 values (those
// P, or one V quad) widened to f32 for the arithmetic.
alias P4 = vec2<u32>;
alias H4 = vec4<f32>;

fn p4_store(p: vec4<f32>) -> P4 {
  return P4(pack2x16float(p.xy), pack2x16float(p.zw));
}

fn p4_load(x: P4) -> H4 {
  return H4(unpack2x16float(x.x), unpack2x16float(x.y));
}

fn quad_load(x: QUAD) -> H4 {
  return H4(unpack2x16float(x.x), unpack2x16float(x.y));
}
