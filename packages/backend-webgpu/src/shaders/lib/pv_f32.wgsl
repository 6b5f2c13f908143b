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

//#include "lib/p4_packed.wgsl"

fn pv_fma(acc: ACC, p: PT, v: H4) -> ACC {
  return fma(H4(p), v, acc);
}
