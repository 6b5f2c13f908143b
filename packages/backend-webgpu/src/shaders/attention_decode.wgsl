// Few-query attention over a KV cache (decode; DESIGN §2 steps 3–5 and 7), split-K, first pass: each workgroup
// takes one (b, kv head), RB of its query rows (the group's query heads × the queries, so K and V are read once per
// kv head, not once per query head) and a range of `blocksPerSplit` 64-key blocks, and writes each row's partial
// softmax state over that range: m (running max, base 2), l (sum of the unrounded P) and the unnormalised
// accumulator acc = Σ P·V. decode_merge.wgsl combines the ranges. Per block, as the sage oracle:
//   S = (Qi·Kiᵀ) exact in i32 (dot4I8Packed) times sQ·sK (smScale·log2 e is folded into sQ), masked (causal:
//   key j visible to query i iff j ≤ i + nk − nq, bottom-right); m' = max(m, max S); P = exp2(S − m');
//   l = l·exp2(m − m') + Σ P; acc = acc·exp2(m − m') + P·V, P·V summed over the block in ACC (lib/pv.wgsl: f16
//   for "f16-block", f16-rounded f32 without shader-f16, f32 for "f32") with P rounded to f16.
// Grid: (splits, row chunks of RB, B·Hkv). WG = 64 × NRS invocations (NRS = min(4, RB)).
//   S and P: invocation (j = lid % 64, rs = lid / 64) owns key j of the block for rows rs, rs + NRS, … (RS rows): it
//     holds key j's int8 row (DP/16 words) in registers and reads the Q rows from workgroup memory.
//   Row max and sum: eight lanes per row over eight keys each, then one lane per row (`parts`).
//   P·V: invocation (quad = lid % (DP/4), rg = lid / (DP/4)) owns one channel quad of rows rg, rg + RG, … (RT rows)
//     and walks the block's keys in order, reading V straight from the cache VJ rows at a time (the loads in flight
//     together; the RG row groups share them in cache).
// Knobs (the host unrolls the loops marked `// unroll` with KW = DP/16, RS and RT; decode.ts picks the rest):
//   RB ≤ 32 query rows per workgroup (the smallest power of two ≥ group·nq, so a decode step is one row chunk);
//   VJ 8 V rows per load batch; blocksPerSplit from DECODE_TARGET_WORKGROUPS (tiles.ts). Not yet measured on a GPU.
//#include "lib/pv.wgsl"
//#include "lib/dot_int8.wgsl"

override DP: u32 = 128u;    // head dim padded to a multiple of 64
override RB: u32 = 16u;     // query rows per workgroup: 1, 2, 4, 8, 16 or 32
override WG: u32 = 256u;    // invocations: 64 · min(4, RB)
override CAUSAL: bool = false;
// The host sets WIDEN for f16 sums: a kv head whose appends held some |v| over 65504 / 64 (pack_f16 flags it in
// vWide), where a block's f16 sum could overflow, has its blocks summed in f32 instead.
override WIDEN: bool = false;

const KB: u32 = K_BLOCK;    // keys per block: the K quantization block (one sK), core's K_BLOCK
//#include "lib/no_key.wgsl"
const NONE: u32 = 0xffffffffu;
const KW_MAX: u32 = 16u;
const VJ: u32 = 8u;          // V rows loaded together in P·V (a divisor of KB; the unrolled loops over them say 8u)
const RT_MAX: u32 = 8u;

//#include "generated/constants.wgsl"
//#include "generated/attention_decode_params.wgsl"

@group(0) @binding(0) var<storage, read> q8: array<vec4<u32>>;      // [b, hq, nq, DP/16]
@group(0) @binding(1) var<storage, read> k8: array<vec4<u32>>;      // [b·Hkv, rows, DP/16]
@group(0) @binding(2) var<storage, read> v16: array<QUAD>;          // [b·Hkv, rows, DP/4] f16 quads
@group(0) @binding(3) var<storage, read> qScales: array<f32>;       // [b, hq, qBlocks]
@group(0) @binding(4) var<storage, read> kScales: array<f32>;       // [b·Hkv, kBlocks]
@group(0) @binding(5) var<storage, read_write> partML: array<vec2<f32>>; // [split, totalRows]: (m, l)
@group(0) @binding(6) var<storage, read_write> partO: array<vec4<f32>>;  // [split, totalRows, DP/4]
@group(0) @binding(7) var<uniform> params: Params;
@group(0) @binding(8) var<storage, read> vWide: array<u32>;         // [b·Hkv]: 1 once an append's |v| passed the limit

var<workgroup> qTile: array<vec4<u32>, RB * (DP / 16u)>;
var<workgroup> sTile: array<f32, RB * KB>;  // [row][key]: S, then the unrounded P
var<workgroup> parts: array<f32, RB * 8u>;  // eight lanes' maxima, then sums, per row
var<workgroup> rowM: array<f32, RB>;
var<workgroup> rowL: array<f32, RB>;
var<workgroup> rowAlpha: array<f32, RB>;
var<workgroup> rowSq: array<f32, RB>;
var<workgroup> rowLimit: array<i32, RB>;    // last visible key, −1 for none (and for rows past the group)
var<workgroup> rowOut: array<u32, RB>;      // the row's index in [b, hq, nq], NONE past the group

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let W = DP / 16u;
  let QW = DP / 4u;
  let nrs = WG / KB;
  let rg = lid / QW;
  let nrg = WG / QW;
  let quad = lid % QW;
  let j = lid % KB;
  let rs = lid / KB;
  let split = wg.x;
  let bkv = wg.z;
  let b = bkv / params.hkv;
  let kvh = bkv % params.hkv;
  let wide = WIDEN && vWide[bkv] != 0u;

  if (lid < RB) {
    let rho = wg.y * RB + lid;
    var out = NONE;
    var limit = -1;
    var sq = 0.0;
    if (rho < params.groupRows) {
      let h = kvh * params.group + rho / params.nq;
      let i = rho % params.nq;
      out = (b * params.hq + h) * params.nq + i;
      limit = select(i32(params.nk) - 1, i32(i) + i32(params.nk) - i32(params.nq), CAUSAL);
      sq = qScales[(b * params.hq + h) * params.qBlocks + i / Q_BLOCK];
    }
    rowOut[lid] = out;
    rowLimit[lid] = limit;
    rowSq[lid] = sq;
    rowM[lid] = NEG;
    rowL[lid] = 0.0;
  }
  workgroupBarrier();
  for (var i = lid; i < RB * W; i += WG) {
    let out = rowOut[i / W];
    var x = vec4<u32>(0u);
    if (out != NONE) {
      x = q8[out * W + i % W];
    }
    qTile[i] = x;
  }

  var o32: array<vec4<f32>, RT_MAX>;
  for (var k = 0u; k < RT; k++) { // unroll
    o32[k] = vec4<f32>(0.0);
  }
  let blocks = (params.nk + KB - 1u) / KB;
  let blk0 = split * params.blocksPerSplit;
  let blk1 = min(blk0 + params.blocksPerSplit, blocks);
  for (var blk = blk0; blk < blk1; blk++) {
    let key0 = blk * KB;
    let keys = min(KB, params.nk - key0);
    let scaleK = kScales[bkv * params.kBlocks + blk];
    workgroupBarrier(); // qTile is written; the previous block's P·V is done with sTile

    // S for key j and this invocation's rows.
    var kr: array<vec4<u32>, KW_MAX>;
    if (j < keys) {
      for (var w = 0u; w < KW; w++) { // unroll
        kr[w] = k8[(bkv * params.rows + key0 + j) * W + w];
      }
    }
    for (var k = 0u; k < RS; k++) { // unroll
      let r = rs + nrs * k;
      if (r < RB) {
        var acc = 0;
        for (var w = 0u; w < KW; w++) { // unroll
          acc = dot16(qTile[r * W + w], kr[w], acc);
        }
        let live = j < keys && i32(key0 + j) <= rowLimit[r];
        sTile[r * KB + j] = select(NEG, f32(acc) * (rowSq[r] * scaleK), live);
      }
    }
    workgroupBarrier();
    if (lid < RB * 8u) {
      var m = NEG;
      for (var e = 0u; e < 8u; e++) {
        m = max(m, sTile[(lid / 8u) * KB + (lid % 8u) * 8u + e]);
      }
      parts[lid] = m;
    }
    workgroupBarrier();
    if (lid < RB) {
      var m = rowM[lid];
      for (var e = 0u; e < 8u; e++) {
        m = max(m, parts[lid * 8u + e]);
      }
      rowAlpha[lid] = exp2(rowM[lid] - m);
      rowM[lid] = m;
    }
    workgroupBarrier();
    for (var k = 0u; k < RS; k++) { // unroll
      let r = rs + nrs * k;
      if (r < RB) {
        let s = sTile[r * KB + j];
        sTile[r * KB + j] = select(0.0, exp2(s - rowM[r]), is_key(s));
      }
    }
    workgroupBarrier();
    if (lid < RB * 8u) {
      var l = 0.0;
      for (var e = 0u; e < 8u; e++) {
        l += sTile[(lid / 8u) * KB + (lid % 8u) * 8u + e];
      }
      parts[lid] = l;
    }
    workgroupBarrier();
    if (lid < RB) {
      var l = rowL[lid] * rowAlpha[lid];
      for (var e = 0u; e < 8u; e++) {
        l += parts[lid * 8u + e];
      }
      rowL[lid] = l;
    }

    // O = O·alpha + P·V over the block's keys, in ACC within the block, keys in order. V comes VJ keys at a time,
    // all loads issued before the multiply-adds and shared by the invocation's RT rows; keys past the cache read
    // rows never written (zeros) with P = 0, so the sums do not change.
    var acc: array<ACC, RT_MAX>;
    for (var k = 0u; k < RT; k++) { // unroll
      acc[k] = acc_zero();
    }
    let v0 = (bkv * params.rows + key0) * QW + quad;
    for (var j0 = 0u; j0 < keys; j0 += VJ) {
      var vq: array<H4, VJ>;
      for (var e = 0u; e < 8u; e++) { // unroll
        vq[e] = quad_load(v16[v0 + (j0 + e) * QW]);
      }
      for (var k = 0u; k < RT; k++) { // unroll
        let r = min(rg + nrg * k, RB - 1u);
        for (var e = 0u; e < 8u; e++) { // unroll
          acc[k] = pv_fma(acc[k], round_p(sTile[r * KB + j0 + e]), vq[e]);
        }
      }
    }
    for (var k = 0u; k < RT; k++) { // unroll
      let r = rg + nrg * k;
      if (r < RB) {
        var sum = acc_f32(acc[k]);
        if (wide) {
          // The same products, summed in f32 (f16 P times f16 V is exact in f32).
          sum = vec4<f32>(0.0);
          for (var jj = 0u; jj < keys; jj++) {
            sum = fma(vec4<f32>(f32(round_p(sTile[r * KB + jj]))), vec4<f32>(quad_load(v16[v0 + jj * QW])), sum);
          }
        }
        o32[k] = fma(o32[k], vec4<f32>(rowAlpha[r]), sum);
      }
    }
  }

  workgroupBarrier();
  let at = split * params.totalRows;
  if (lid < RB && rowOut[lid] != NONE) {
    partML[at + rowOut[lid]] = vec2<f32>(rowM[lid], rowL[lid]);
  }
  for (var k = 0u; k < RT; k++) { // unroll
    let r = rg + nrg * k;
    if (r < RB && rowOut[r] != NONE) {
      partO[(at + rowOut[r]) * QW + quad] = o32[k];
    }
  }
}
