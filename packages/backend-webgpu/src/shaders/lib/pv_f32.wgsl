// P·V in f32 (pvAccumulation "f32", or no shader-f16): P and V are still f16 values (P rounded on its way into
// workgroup memory, V stored as f16), their products summed in f32 throughout.
alias PT = f32;
// Four f16 channels as two words (no f16 type without shader-f16), unpacked where used.
alias QUAD = vec2<u32>;
// No row padding of the f32 P tile (see pv_f16emu.wgsl).
const P_PAD: u32 = 0u;
alias ACC = vec4<f32>;

fn round_p(p: f32) -> PT {
  return unpack2x16float(pack2x16float(vec2<f32>(p, 0.0))).x;
}

fn acc_zero() -> ACC {
  return ACC(0.0);
}

fn acc_fma(acc: ACC, p: PT, v: QUAD) -> ACC {
  return fma(vec4<f32>(p), vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)), acc);
}

fn acc_f32(acc: ACC) -> vec4<f32> {
  return acc;
}

// For attention_int8.wgsl's register tiles: P4 holds four P values of one key (four query rows), rounded to f16
// and packed two per word; H4 is four f16 values (those P, or one V quad) widened to f32 for the arithmetic.
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

fn pv_fma(acc: ACC, p: PT, v: H4) -> ACC {
  return fma(H4(p), v, acc);
}
