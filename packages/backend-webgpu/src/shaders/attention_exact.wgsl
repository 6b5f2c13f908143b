// Exact flash attention on the same engine and tiling as attention_int8.wgsl, the baseline it is measured against:
// Q, K, V as f16 (DESIGN's inputs are f16 in the benchmark), S = Q·Kᵀ·smScale·log2(e) with products summed in f16
// over 32 channels and then in f32 (pv_f16 variant) or in f32 throughout (pv_f32), the same online softmax and P·V.
// Grid and ownership as in attention_int8.wgsl with TILES_FIRST (query tiles first). Q tile [BQ][DP/4 quads of
// f16] stays in workgroup memory.
// Like attention_int8.wgsl, the next K/V tile is read into registers (all loads at once) while the current one is
// computed, so the baseline gets the same load engineering as the kernel it is compared with.
// Knobs (tiles.ts): BQ 64, BK 32 where 48 KiB of workgroup memory is available (measured best on H100 and H200
// over Vulkan; figures in NOTES.md), else 32×32.
//#include "lib/segment.wgsl"
//#include "lib/pv.wgsl"
//#include "lib/dot.wgsl"
//#include "lib/attention_common.wgsl"

@group(0) @binding(0) var<storage, read> q16: array<QUAD>;        // [b, hq, token, DP/4] f16 quads
@group(0) @binding(1) var<storage, read> k16: array<QUAD>;        // [b, hkv, token, DP/4]
@group(0) @binding(2) var<storage, read> v16: array<QUAD>;        // [b, hkv, token, DP/4]
@group(0) @binding(3) var<storage, read> segs: array<Segment>;
@group(0) @binding(4) var<storage, read_write> result: array<vec4<f32>>; // [b, hq, token, DP/4]
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;   // [b, hq, token]
@group(0) @binding(6) var<uniform> params: Params;

var<workgroup> qTile: array<QUAD, BQ * (DP / 4u)>;
var<workgroup> kTile: array<QUAD, BK * (DP / 4u + 1u)>;

const KV_MAX: u32 = 16u; // K (and V) quads an invocation copies per tile: KV = BK·DP/4 / 256, at most 64·64/256

// This invocation's quads of one key tile (quads lid, lid + 256, …: a warp reads consecutive quads).
struct KvQuads {
  k: array<QUAD, KV_MAX>,
  v: array<QUAD, KV_MAX>,
}

// Reads them from row `kRow` of k16/v16, `keys` of them keys of the segment (the rest zeros). All loads are
// issued together into registers, a tile ahead of their use.
fn fetch_kv(lid: u32, kRow: u32, keys: u32) -> KvQuads {
  let W = DP / 4u;
  var x: KvQuads;
  for (var n = 0u; n < KV; n++) { // unroll
    let i = lid + n * 256u;
    x.k[n] = select(QUAD(), k16[kRow * W + i], i / W < keys);
    x.v[n] = select(QUAD(), v16[kRow * W + i], i / W < keys);
  }
  return x;
}

// Stores what fetch_kv read into kTile (rows padded by one quad) and vTile.
fn stage_kv(lid: u32, x: KvQuads) {
  let W = DP / 4u;
  for (var n = 0u; n < KV; n++) { // unroll
    let i = lid + n * 256u;
    kTile[(i / W) * (W + 1u) + i % W] = x.k[n];
    vTile[i] = x.v[n];
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let W = DP / 4u; // quads per row (a local: naga 29 panics on an override derived from DP used here)
  let seg = segs[wg.z];
  let rowBase = wg.x * BQ;
  if (rowBase >= seg.nq) {
    return;
  }
  let h = wg.y;
  let kvh = h / params.group;
  let tx = lid % 16u;
  let ty = lid / 16u;
  let qRow0 = (seg.b * params.hq + h) * params.nq + seg.q0;
  let kRow0 = (seg.b * params.hkv + kvh) * params.nk + seg.k0;

  for (var i = lid; i < BQ * W; i += 256u) {
    let row = rowBase + i / W;
    qTile[i] = select(QUAD(), q16[(qRow0 + row) * W + i % W], row < seg.nq);
  }
  init_rows();

  let tiles = key_tiles(rowBase, seg.nq, seg.nk);
  var next = fetch_kv(lid, kRow0, seg.nk);
  for (var t = 0u; t < tiles; t++) {
    let key0 = t * BK;
    workgroupBarrier(); // the previous tile's P·V is done with vTile and pTile
    stage_kv(lid, next);
    workgroupBarrier();
    // The next tile's quads are in flight during this tile's arithmetic (the last tile's fetch reads zeros).
    next = fetch_kv(lid, kRow0 + key0 + BK, select(0u, seg.nk - key0 - BK, seg.nk > key0 + BK));

    // Zeroed here, not by the declaration: naga initializes a loop-local var once, at function entry.
    var acc: array<array<f32, CK_MAX>, RQ_MAX>;
    for (var r = 0u; r < RQ; r++) { // unroll
      for (var c = 0u; c < CK; c++) { // unroll
        acc[r][c] = 0.0;
      }
    }
    for (var w = 0u; w < W; w += 8u) {
      for (var c = 0u; c < CK; c++) { // unroll
        var kq: array<QUAD, 8>;
        for (var i = 0u; i < 8u; i++) { // unroll
          kq[i] = kTile[(tx + 16u * c) * (W + 1u) + w + i];
        }
        for (var r = 0u; r < RQ; r++) { // unroll
          var qq: array<QUAD, 8>;
          for (var i = 0u; i < 8u; i++) { // unroll
            qq[i] = qTile[(ty * RQ + r) * W + w + i];
          }
          acc[r][c] += dot32(qq, kq);
        }
      }
    }
    for (var r = 0u; r < RQ; r++) { // unroll
      for (var c = 0u; c < CK; c++) { // unroll
        s[r][c] = acc[r][c] * params.logitScale;
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
