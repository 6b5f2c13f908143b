// Per-block INT8 quantization (DESIGN §2 step 2; with the LSE also step 6's row term) of one block of BLOCK tokens of one head of one segment:
//   x = (value − mean) · scale,  s = max|x| / 127 (1 when the max is 0),  q = round half away from zero (x / s),
// packed four int8 per u32 into [b, head, token, DP/4] (channels D..DP-1 are 0), s into `scales`.
// Q: BLOCK 128, scale = smScale·log2(e), nothing subtracted; it also writes the LSE row term smScale·(q·mean(K))
// when asked. K: BLOCK 64, scale 1, its mean subtracted (the smoothing). The mean is k_mean's CHUNKS partial sums
// added in order, over the token count, kept in workgroup memory; or (meanGiven, a KV cache's queries) the mean
// itself, [b, kv head, DP/4] in the same binding.
// Grid: (blocks, heads, segments). Workgroup 256 threads; thread i takes the block's output words i, i+256, … (word
// w of token t is w + t·DP/4), so a warp reads whole rows four channels per thread and writes whole packed rows.
// Two sweeps over the block: the maximum, then (the loads hit cache) the packed words. A tail block is partial;
// its missing tokens are neither read nor written.
//#include "lib/segment.wgsl"

override BLOCK: u32 = 128u;
const CHUNKS: u32 = 16u; // k_mean's partial sums per (segment, head)

//#include "generated/constants.wgsl"
//#include "generated/quantize_int8_params.wgsl"

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> segs: array<Segment>;
@group(0) @binding(2) var<storage, read> kPartial: array<vec4<f32>>;  // [segment, kv head, CHUNKS, DP/4], or the mean
@group(0) @binding(3) var<storage, read_write> packed: array<u32>;    // [b, head, token, DP/4]
@group(0) @binding(4) var<storage, read_write> scales: array<f32>;    // Q [b, hq, blocks], then K [b, hkv, blocks]
@group(0) @binding(5) var<storage, read_write> bias: array<f32>;      // [b, head, token]
@group(0) @binding(6) var<uniform> params: Params;

//#include "lib/load_element.wgsl"

const THREADS: u32 = 256u;
//#include "lib/block_scale.wgsl"
var<workgroup> mean: array<vec4<f32>, 64>; // DP/4 ≤ 64

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let seg = segs[wg.z];
  let h = wg.y;
  let first = select(seg.k0, seg.q0, params.forQueries == 1u);
  let count = select(seg.nk, seg.nq, params.forQueries == 1u);
  let blockBase = select(seg.kBlockBase, seg.qBlockBase, params.forQueries == 1u);
  if (wg.x * BLOCK >= count) {
    return;
  }
  let words = params.dp / 4u;
  let tokens = min(BLOCK, count - wg.x * BLOCK); // live tokens of this block
  let st = params.strides;
  let row0 = params.base + seg.b * st.x + h * st.y + (first + wg.x * BLOCK) * st.z;
  let needMean = params.subtractMean == 1u || params.rowBias == 1u;
  if (lid < words) {
    var m = vec4<f32>(0.0);
    if (needMean && params.meanGiven == 1u) {
      m = kPartial[(seg.b * params.kvHeads + h / params.group) * words + lid];
    } else if (needMean) {
      let p0 = (wg.z * params.kvHeads + h / params.group) * CHUNKS * words + lid;
      for (var i = 0u; i < CHUNKS; i++) {
        m += kPartial[p0 + i * words];
      }
      m /= f32(max(seg.nk, 1u));
    }
    mean[lid] = m;
  }
  workgroupBarrier();

  let subtract = params.subtractMean == 1u;
  var amax = 0.0;
  for (var i = lid; i < tokens * words; i += THREADS) {
    let t = i / words;
    let w = i % words;
    let x = (load4(row0 + t * st.z, w * 4u, st.w, params.d) - select(vec4<f32>(0.0), mean[w], subtract)) * params.scale;
    amax = max_abs4(amax, x);
  }
  let s = block_scale(lid, amax);
  let bh = seg.b * params.heads + h;
  if (lid == 0u) {
    scales[params.scaleOffset + bh * params.blocksTotal + blockBase + wg.x] = s;
  }

  let out0 = (bh * params.nTotal + first + wg.x * BLOCK) * words;
  for (var i = lid; i < tokens * words; i += THREADS) {
    let t = i / words;
    let w = i % words;
    let x = (load4(row0 + t * st.z, w * 4u, st.w, params.d) - select(vec4<f32>(0.0), mean[w], subtract)) * params.scale;
    packed[out0 + i] = pack4xI8(round_half_away(x / s));
  }

  if (params.rowBias == 1u) {
    // q·mean(K) per token, in natural-log units (x carries log2(e)); one thread per token, only when the LSE is asked.
    for (var t = lid; t < tokens; t += THREADS) {
      var total = 0.0;
      for (var w = 0u; w < words; w++) {
        total += dot(load4(row0 + t * st.z, w * 4u, st.w, params.d) * params.scale, mean[w]);
      }
      bias[bh * params.nTotal + first + wg.x * BLOCK + t] = total / LOG2E;
    }
  }
}
