// P·V "f16-block" without shader-f16: f32 arithmetic with the tile accumulator rounded to f16 after every
// multiply-add, which is what f16 hardware does (one rounding per fma), then added to the f32 accumulator.
alias PT = f32;
// Four f16 channels as two words (no f16 type without shader-f16), unpacked where used.
alias QUAD = vec2<u32>;
// No row padding of the f32 P tile: this variant serves adapters without shader-f16 (SwiftShader, lavapipe
// forced), where 32 KiB of workgroup memory must still hold a 64-key tile at D = 128.
const P_PAD: u32 = 0u;
alias ACC = vec4<f32>;

fn round_p(p: f32) -> PT {
  return unpack2x16float(pack2x16float(vec2<f32>(p, 0.0))).x;
}

fn acc_zero() -> ACC {
  return ACC(0.0);
}

fn acc_fma(acc: ACC, p: PT, v: QUAD) -> ACC {
  let x = fma(vec4<f32>(p), vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)), acc);
  return vec4<f32>(unpack2x16float(pack2x16float(x.xy)), unpack2x16float(pack2x16float(x.zw)));
}

fn acc_f32(acc: ACC) -> vec4<f32> {
  return acc;
}

//#include "lib/p4_packed.wgsl"

// One multiply-add with f16 rounding of the result, as in acc_fma.
fn pv_fma(acc: ACC, p: PT, v: H4) -> ACC {
  let x = fma(H4(p), v, acc);
  return vec4<f32>(unpack2x16float(pack2x16float(x.xy)), unpack2x16float(pack2x16float(x.zw)));
}
