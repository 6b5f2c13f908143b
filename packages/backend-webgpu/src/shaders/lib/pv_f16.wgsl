// P·V in f16 (shader-f16): products summed in f16 within one key tile (one 64-key K block), then added to the
// f32 accumulator (DESIGN §2 step 5, "f16-block"). P is kept in workgroup memory as f16.
alias PT = f16;
// Four f16 channels: the unit V (and the exact kernel's Q and K) is stored and loaded in.
alias QUAD = vec4<f16>;
// Row padding of the P tile: 4 f16 keep 8-byte alignment and spread the stores over banks.
const P_PAD: u32 = 4u;
alias ACC = vec4<f16>;

fn round_p(p: f32) -> PT {
  return f16(p);
}

fn acc_zero() -> ACC {
  return ACC(0.0h);
}

fn acc_fma(acc: ACC, p: PT, v: QUAD) -> ACC {
  return fma(vec4<f16>(p), v, acc);
}

fn acc_f32(acc: ACC) -> vec4<f32> {
  return vec4<f32>(acc);
}

// For attention_int8.wgsl's register tiles: P4 holds four P values of one key (four query rows) in workgroup
// memory; H4 is four f16 values (those P, or one V quad) as the arithmetic takes them; pv_fma is one packed step.
alias P4 = vec4<f16>;
alias H4 = vec4<f16>;

fn p4_store(p: vec4<f32>) -> P4 {
  return P4(p);
}

fn p4_load(x: P4) -> H4 {
  return x;
}

fn quad_load(x: QUAD) -> H4 {
  return x;
}

fn pv_fma(acc: ACC, p: PT, v: H4) -> ACC {
  return fma(H4(p), v, acc);
}
