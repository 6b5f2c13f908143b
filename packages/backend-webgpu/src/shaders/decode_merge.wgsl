// Few-query attention over a KV cache (decode), second pass: the split ranges' partial rows (m, l, acc) of
// attention_decode.wgsl combined in split order (deterministic): M = max m_s, L = Σ l_s·exp2(m_s − M),
// O = Σ acc_s·exp2(m_s − M) / L, and the natural-log LSE (M + log2 L)·ln 2 plus the smoothing row term
// smScale·(q·μ) that quantize_int8 left in `lse` (DESIGN §2 steps 5–6). A row that saw no key gets zeros and −∞.
// Grid: 1-D (2-D past the x limit), one invocation per (row, channel quad), rows in [b, hq, nq] order.
// STORE (the host sets it where each quad is whole words of the output, as attention_int8.wgsl's STORE): O goes
// to the output in OUT_DTYPE at its offset and strides; otherwise to the f32 result [row, DP] for store_output.
// Knobs: SJ 8 ranges loaded together (the loads of a range are independent; one after another they would each wait
// the full memory latency). A few thousand invocations per decode step, each reading `splits` partial rows.
//#include "lib/out_quad.wgsl"

override DP: u32 = 128u;
override STORE: bool = false;
override OUT_DTYPE: u32 = 0u;

//#include "lib/no_key.wgsl"
const SJ: u32 = 8u;        // ranges whose partial rows are loaded together (the unrolled loops over them say 8u)

//#include "generated/constants.wgsl"
//#include "generated/decode_merge_params.wgsl"

@group(0) @binding(0) var<storage, read> partML: array<vec2<f32>>; // [split, totalRows]
@group(0) @binding(1) var<storage, read> partO: array<vec4<f32>>;  // [split, totalRows, DP/4]
@group(0) @binding(2) var<storage, read_write> dst: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;    // [b, hq, nq]: the row term in, the LSE out
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let QW = DP / 4u;
  let t = gid.y * params.rowPitch + gid.x;
  if (t >= params.totalRows * QW) {
    return;
  }
  let row = t / QW;
  let quad = t % QW;
  // SJ ranges' loads at a time, issued together; indices past the last range repeat it with weight 0.
  var m = NEG;
  for (var s0 = 0u; s0 < params.splits; s0 += SJ) {
    var ms: array<f32, SJ>;
    for (var e = 0u; e < 8u; e++) { // unroll
      ms[e] = partML[min(s0 + e, params.splits - 1u) * params.totalRows + row].x;
    }
    for (var e = 0u; e < 8u; e++) { // unroll
      m = max(m, ms[e]);
    }
  }
  var l = 0.0;
  var o = vec4<f32>(0.0);
  for (var s0 = 0u; s0 < params.splits; s0 += SJ) {
    var parts: array<vec2<f32>, SJ>;
    var accs: array<vec4<f32>, SJ>;
    for (var e = 0u; e < 8u; e++) { // unroll
      let at = min(s0 + e, params.splits - 1u) * params.totalRows + row;
      parts[e] = partML[at];
      accs[e] = partO[at * QW + quad];
    }
    for (var e = 0u; e < 8u; e++) { // unroll
      let w = select(0.0, exp2(parts[e].x - m), s0 + e < params.splits);
      l = fma(parts[e].y, w, l);
      o = fma(accs[e], vec4<f32>(w), o);
    }
  }
  let seen = row_seen(m, l);
  o *= select(0.0, 1.0 / l, seen);
  if (params.returnLse == 1u && quad == 0u) {
    lse[row] = select(bitcast<f32>(negInfBits), (m + log2(l)) / LOG2E + lse[row], seen);
  }
  if (!STORE) {
    let bits = bitcast<vec4<u32>>(o);
    dst[t * 2u] = bits.xy;
    dst[t * 2u + 1u] = bits.zw;
    return;
  }
  let c = quad * 4u;
  if (c >= params.d) {
    return;
  }
  let n = row % params.nq;
  let h = (row / params.nq) % params.hq;
  let b = row / (params.nq * params.hq);
  let st = params.outStrides;
  store_out_quad(params.outBase + b * st.x + h * st.y + n * st.z + c, o);
}
