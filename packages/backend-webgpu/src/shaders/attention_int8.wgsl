// SageAttention's main kernel (DESIGN §2 steps 3–6): S = (Qi·Kiᵀ) with dot4I8Packed, exact in i32, times sQ·sK
// (base-2 logits: smScale·log2(e) is folded into sQ); online softmax in exp2 over key tiles; P·V in f16 within a
// tile then f32 (pv_f16; pv_f16emu rounds alike without shader-f16), or in f32 (pv_f32); O = acc / l; LSE with
// the smoothing term restored.
// Grid: (query tiles of BQ rows, query heads, segments). Workgroup 16 × 16; see lib/attention_common.wgsl for who
// owns what. Q tile [BQ][DP/16 words of 16 int8] stays in workgroup memory for the whole loop; K and V tiles stream.
// Knobs (set by the host from the adapter's workgroup memory, tiles.ts): BK 64, the K block, so that f16 P·V sums
// exactly one block as DESIGN §2 step 5 says; BQ 64 where it fits. H100/Vulkan, N=4096 D=128 end-to-end:
// 64×64 9.6 TOPS, 32×64 9.3 TOPS (before the reused scratch buffers; see README).
//#include "lib/segment.wgsl"
//#include "lib/pv.wgsl"
//#include "lib/attention_common.wgsl"

@group(0) @binding(0) var<storage, read> q8: array<vec4<u32>>;    // [b, hq, token, DP/16]
@group(0) @binding(1) var<storage, read> k8: array<vec4<u32>>;    // [b, hkv, token, DP/16]
@group(0) @binding(2) var<storage, read> v16: array<QUAD>;        // [b, hkv, token, DP/4] f16 quads
@group(0) @binding(3) var<storage, read> scales: array<f32>;      // Q scales [b, hq, qBlocks], then K [b, hkv, kBlocks]
@group(0) @binding(4) var<storage, read> segs: array<Segment>;
@group(0) @binding(5) var<storage, read_write> result: array<vec4<f32>>; // [b, hq, token, DP/4]
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;   // [b, hq, token]: the row term in, the LSE out
@group(0) @binding(7) var<uniform> params: Params;

const Q_BLOCK: u32 = 128u;
const K_BLOCK: u32 = 64u;
var<workgroup> qTile: array<vec4<u32>, BQ * (DP / 16u)>;
var<workgroup> kTile: array<vec4<u32>, BK * (DP / 16u + 1u)>; // one spare word per key staggers the banks

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let W = DP / 16u; // vec4 words per int8 row (a local: naga 29 panics on an override derived from DP used here)
  let seg = segs[wg.z];
  let rowBase = wg.x * BQ;
  if (rowBase >= seg.nq) {
    return;
  }
  let h = wg.y;
  let kvh = h / params.group;
  let tx = lid % 16u;
  let ty = lid / 16u;
  let bh = seg.b * params.hq + h;
  let bkv = seg.b * params.hkv + kvh;
  let qRow0 = bh * params.nq + seg.q0;
  let kRow0 = bkv * params.nk + seg.k0;

  for (var i = lid; i < BQ * W; i += 256u) {
    let row = rowBase + i / W;
    qTile[i] = select(vec4<u32>(0u), q8[(qRow0 + row) * W + i % W], row < seg.nq);
  }
  let sQ = scales[bh * params.qBlocks + seg.qBlockBase + rowBase / Q_BLOCK];
  init_rows();

  let tiles = key_tiles(rowBase, seg.nq, seg.nk);
  for (var t = 0u; t < tiles; t++) {
    let key0 = t * BK;
    workgroupBarrier(); // the previous tile's P·V is done with kTile, vTile and pTile
    for (var i = lid; i < BK * W; i += 256u) {
      let key = key0 + i / W;
      kTile[(i / W) * (W + 1u) + i % W] = select(vec4<u32>(0u), k8[(kRow0 + key) * W + i % W], key < seg.nk);
    }
    load_v_tile(lid, (kRow0 + key0) * (DP / 4u), seg.nk - key0);
    let scale = sQ * scales[params.kScaleOffset + bkv * params.kBlocks + seg.kBlockBase + key0 / K_BLOCK];
    workgroupBarrier();

    // Zeroed here, not by the declaration: naga initializes a loop-local var once, at function entry.
    var acc: array<array<i32, CK_MAX>, RQ_MAX>;
    for (var r = 0u; r < RQ; r++) { // unroll
      for (var c = 0u; c < CK; c++) { // unroll
        acc[r][c] = 0;
      }
    }
    for (var w = 0u; w < W; w++) { // unroll
      var qv: array<vec4<u32>, RQ_MAX>;
      for (var r = 0u; r < RQ; r++) { // unroll
        qv[r] = qTile[(ty * RQ + r) * W + w];
      }
      for (var c = 0u; c < CK; c++) { // unroll
        let kv = kTile[(tx + 16u * c) * (W + 1u) + w];
        for (var r = 0u; r < RQ; r++) { // unroll
          // One chain through the accumulator: each packed dot can take it as its addend (IDP4A-style).
          acc[r][c] = dot4I8Packed(qv[r].x, kv.x) + acc[r][c];
          acc[r][c] = dot4I8Packed(qv[r].y, kv.y) + acc[r][c];
          acc[r][c] = dot4I8Packed(qv[r].z, kv.z) + acc[r][c];
          acc[r][c] = dot4I8Packed(qv[r].w, kv.w) + acc[r][c];
        }
      }
    }
    for (var r = 0u; r < RQ; r++) { // unroll
      for (var c = 0u; c < CK; c++) { // unroll
        s[r][c] = f32(acc[r][c]) * scale;
      }
    }
    mask_and_share_max(ty, tx, rowBase, key0, seg.nq, seg.nk);
    workgroupBarrier();
    softmax_tile(ty, tx);
    workgroupBarrier();
    pv_tile(ty, tx);
  }
  finish(ty, tx, rowBase, seg.nq, qRow0);
}
