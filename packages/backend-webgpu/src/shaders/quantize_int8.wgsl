// Per-block INT8 quantization (DESIGN §2 step 2) of one block of BLOCK tokens of one head of one segment:
//   x = (value − mean) · scale,  s = max|x| / 127 (1 when the max is 0),  q = round half away from zero (x / s),
// packed four int8 per u32 into [b, head, token, DP/4] (channels D..DP-1 are 0), s into `scales`.
// Q: BLOCK 128, scale = smScale·log2(e), nothing subtracted; it also writes the LSE row term smScale·(q·mean(K)).
// K: BLOCK 64, scale 1, its mean subtracted (the smoothing).
// Grid: (blocks, heads, segments). Workgroup 256 threads: 256 / BLOCK threads share a token, each owning a
// contiguous slice of its channels. A tail block is partial; its missing tokens are neither read nor written.
//#include "lib/segment.wgsl"

override BLOCK: u32 = 128u;

struct Params {
  strides: vec4<u32>, // element strides of the source as (b, h, n, d)
  base: u32,          // element offset of the source in its buffer
  heads: u32,         // heads of this tensor
  group: u32,         // heads per kv head (to find the K mean a query head uses)
  kvHeads: u32,
  d: u32,
  dp: u32,
  nTotal: u32,        // tokens of this tensor (per b)
  blocksTotal: u32,   // quantization blocks per (b, head), all segments together
  scale: f32,
  subtractMean: u32,
  rowBias: u32,       // 1: write smScale·(q·mean(K)) per token (queries, when the LSE is asked for)
  forQueries: u32,    // 1: block bases and counts come from the segment's query side
  scaleOffset: u32,   // where this tensor's scales start in `scales` (K's follow Q's)
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> segs: array<Segment>;
@group(0) @binding(2) var<storage, read> kMean: array<f32>;           // [segment, kv head, DP]
@group(0) @binding(3) var<storage, read_write> packed: array<u32>;    // [b, head, token, DP/4]
@group(0) @binding(4) var<storage, read_write> scales: array<f32>;    // Q [b, hq, blocks], then K [b, hkv, blocks]
@group(0) @binding(5) var<storage, read_write> bias: array<f32>;      // [b, head, token]
@group(0) @binding(6) var<uniform> params: Params;

//#include "lib/load_element.wgsl"

const THREADS: u32 = 256u;
const LOG2E: f32 = 1.4426950408889634;
var<workgroup> reduce: array<f32, THREADS>;

fn round_half_away(y: f32) -> i32 {
  return i32(clamp(sign(y) * floor(abs(y) + 0.5), -127.0, 127.0));
}

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
  let perToken = THREADS / BLOCK;
  let t = lid / perToken;
  let slice = params.dp / perToken;
  let c0 = (lid % perToken) * slice;
  let n = wg.x * BLOCK + t;
  let live = n < count;
  let st = params.strides;
  let row = params.base + seg.b * st.x + h * st.y + (first + n) * st.z;
  let meanRow = (wg.z * params.kvHeads + h / params.group) * params.dp;

  var amax = 0.0;
  var qDotMean = 0.0;
  if (live) {
    for (var c = c0; c < min(c0 + slice, params.d); c++) {
      let m = kMean[meanRow + c];
      let x = (load_element(row + c * st.w) - select(0.0, m, params.subtractMean == 1u)) * params.scale;
      amax = max(amax, abs(x));
      qDotMean += x * m;
    }
  }
  reduce[lid] = amax;
  workgroupBarrier();
  for (var stride = THREADS / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      reduce[lid] = max(reduce[lid], reduce[lid + stride]);
    }
    workgroupBarrier();
  }
  let blockMax = reduce[0];
  let s = select(blockMax / 127.0, 1.0, blockMax == 0.0);
  let bh = seg.b * params.heads + h;
  if (lid == 0u) {
    scales[params.scaleOffset + bh * params.blocksTotal + blockBase + wg.x] = s;
  }
  workgroupBarrier();

  if (live) {
    let out0 = (bh * params.nTotal + first + n) * (params.dp / 4u);
    for (var c = c0; c < c0 + slice; c += 4u) {
      var v = vec4<i32>(0);
      for (var j = 0u; j < 4u; j++) {
        if (c + j < params.d) {
          let m = select(0.0, kMean[meanRow + c + j], params.subtractMean == 1u);
          v[j] = round_half_away((load_element(row + (c + j) * st.w) - m) * params.scale / s);
        }
      }
      packed[out0 + c / 4u] = pack4xI8(v);
    }
  }

  if (params.rowBias == 1u) {
    // The perToken partial dot products of a token meet here; q·mean(K) in natural-log units: x carries log2(e).
    reduce[lid] = qDotMean;
    workgroupBarrier();
    if (live && lid % perToken == 0u) {
      var total = 0.0;
      for (var j = 0u; j < perToken; j++) {
        total += reduce[lid + j];
      }
      bias[bh * params.nTotal + first + n] = total / LOG2E;
    }
  }
}
