// SageAttention's main kernel (DESIGN §2 steps 3–7): S = (Qi·Kiᵀ) with dot4I8Packed, exact in i32, times sQ·sK
// (base-2 logits: smScale·log2(e) is folded into sQ); online softmax in exp2 over key tiles; P·V in f16 within a
// tile then f32 (pv_f16; pv_f16emu rounds alike without shader-f16), or in f32 (pv_f32); O = acc / l; LSE with
// the smoothing term restored.
//
// Grid: (query heads, query tiles of BQ rows, segments): heads vary fastest, so the GPU starts every head's tile t
// before any head's t+1; causal, tiles go last row first, so the longest ones start first and the short ones fill
// in at the end, key tiles wholly right of the diagonal are never visited (key_tiles), and only the tiles the
// diagonal or the segment's end cuts are masked element by element (tile_cut). TILES_FIRST swaps the first two:
// the workgroups running at once then share a few heads' K and V, which stay in L2.
// The Q tile [BQ][DP int8] stays in workgroup memory; K (int8) and V (f16) tiles of BK keys stream through it.
// WG = (BQ / RQ) × 16 invocations; invocation (ty, tx) owns query rows ty·RQ … ty·RQ+RQ−1 for the whole loop, and
// keeps in registers:
//   S: RQ rows × CK keys (keys tx, tx+16, …; CK = BK/16). Each 16-byte read of K feeds RQ·4 packed dots, each of Q
//      CK·4: at RQ 4, CK 4, eight reads of workgroup memory per 64 dots.
//   O: RQ rows × QD channel quads (quads tx, tx+16, …; QD = DP/64), f32, plus the tile's f16 sums. Per key, RQ/4
//      reads of P (four rows in one word pair) and QD of V feed RQ·QD vec4 multiply-adds (two packed f16 each).
// Row maxima meet across the 16 tx in `rowParts` (lib/row_max_shared.wgsl), or by subgroup shuffles where the device
// has subgroups (lib/row_max_subgroup.wgsl: one barrier fewer on subgroups of 16 lanes or more, fewer reads on
// narrower ones); at the end the row sums meet in `rowParts`. Four barriers per key tile (three with subgroups of 16
// lanes or more); the next tile's K and V are fetched into registers while this one is computed (fetch_kv).
// Knobs (tiles.ts picks them from the adapter's workgroup memory; the host unrolls the loops marked `// unroll`
// with RQ, RP = RQ/4, CK, QD, W = DP/16, PV_KEYS, and the words each invocation copies: QL of Q, KL of K, VL of V):
//   BQ 64, BK 64 (the K block, so f16 P·V sums exactly one block, DESIGN §2 step 5), RQ 4: 256 invocations,
//   46 848 bytes of workgroup memory at D = 128. 64×64 with RQ 4 and the next tile fetched into registers measured
//   best on an NVIDIA H200 (Deno, wgpu on Vulkan); the alternatives tried and their times are in NOTES.md.
//#include "lib/segment.wgsl"
//#include "lib/pv.wgsl"
//#include "lib/attention_params.wgsl"
//#include "lib/out_quad.wgsl"
//#include "lib/dot_int8.wgsl"

override BQ: u32 = 64u;   // query rows per workgroup: 16, 32 or 64
override BK: u32 = 64u;   // keys per tile: 16, 32 or 64 (divides the 64-key K block: one K scale per tile)
override DP: u32 = 128u;  // head dim padded to a multiple of 64
override CAUSAL: bool = false;
override RQ: u32 = 4u;    // query rows per invocation: 4 (measured best) or 8
// Keys per unrolled step of the P·V loop: 4, 8 or 16 (at most BK; the host unrolls the step with it). 4: the fewest
// V quads held in registers at once (4 · QD); 8 and 16 give the compiler more loads to hoist. bench/table.ts --sweep
// times all three (NOTES.md).
override PV_KEYS: u32 = 4u;
override WG: u32 = 256u;  // invocations, BQ / RQ × 16 (set by the host with the others)
// The host sets STORE where the output has adjacent channels, D is a multiple of 4 and every row starts on a
// multiple of 2 (f32) or 4 (16-bit) elements: each channel quad is then one or two whole vec2 words, written here
// in OUT_DTYPE (0 f32, 1 f16, 2 bf16, rounded to nearest even) at the output's offset and strides, and the separate
// store pass (and the f32 result's round trip through memory) is skipped.
override STORE: bool = false;
override OUT_DTYPE: u32 = 0u;
// The host sets WIDEN for f16 sums over a V nothing on the host has scanned (device V): a kv head that pack_f16 found
// holding some |v| over 65504 / 64, where a tile's f16 sum could overflow, has its tiles summed in f32 instead.
override WIDEN: bool = false;
// The host sets TILES_FIRST (grid (query tiles, heads, segments)) for long non-causal calls: tiles.ts says where.
override TILES_FIRST: bool = false;

const TX: u32 = 16u;      // invocations sharing a row group: over keys in S, over channel quads in P·V
const RQ_MAX: u32 = 8u;
const RP_MAX: u32 = 2u;
const CK_MAX: u32 = 4u;
const QD_MAX: u32 = 4u;
const KL_MAX: u32 = 8u;   // K words an invocation stages per tile (KL = BK·DP/16 / WG, at most 8: tiles.ts)
const VL_MAX: u32 = 32u;  // V quads an invocation stages per tile (VL = BK·DP/4 / WG, at most 32)

@group(0) @binding(0) var<storage, read> q8: array<vec4<u32>>;    // [b, hq, token, DP/16]
@group(0) @binding(1) var<storage, read> k8: array<vec4<u32>>;    // [b, hkv, token, DP/16]
@group(0) @binding(2) var<storage, read> v16: array<QUAD>;        // [b, hkv, token, DP/4] f16 quads
@group(0) @binding(3) var<storage, read> scales: array<f32>;      // Q scales [b, hq, qBlocks], then K [b, hkv, kBlocks]
@group(0) @binding(4) var<storage, read> segs: array<Segment>;
// STORE: the f32 result [b, hq, token, DP] for store_output (false), or the output itself (true).
@group(0) @binding(5) var<storage, read_write> dst: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;   // [b, hq, token]: the row term in, the LSE out
@group(0) @binding(7) var<uniform> params: Params;
@group(0) @binding(8) var<storage, read> vWide: array<u32>;     // [b, hkv]: 1 where pack_f16 saw |v| over the limit

// Q tile [row][DP/16]: a warp reads two rows at a time, one per quarter-warp, so no padding is needed.
var<workgroup> qTile: array<vec4<u32>, BQ * (DP / 16u)>;
// K tile [key][DP/16 + 1]: the spare word per key puts the 16 keys a row group reads on different banks.
var<workgroup> kTile: array<vec4<u32>, BK * (DP / 16u + 1u)>;
// V tile [key][DP/4] f16 quads: the 16 tx read 16 consecutive quads of one key.
var<workgroup> vTile: array<QUAD, BK * (DP / 4u)>;
// P tile [key][BQ/4 + 1] of P4 (four rows of one key, f16): an invocation's rows are RQ/4 consecutive words; the
// spare word per key spreads the stores of the 16 tx (16 different keys) over the banks.
var<workgroup> pTile: array<P4, BK * (BQ / 4u + 1u)>;
// Per-row partial maxima, and at the end sums: [tx][BQ/4 + 1] of four rows each. Whole vec4 stores only (a store
// to one lane of a shared vector can be a read-modify-write of all four on lavapipe, losing its neighbours').
var<workgroup> rowParts: array<vec4<f32>, TX * (BQ / 4u + 1u)>;
// After rowParts: naga 29 panics on a function that uses an override-sized workgroup array declared after it.
//#include "lib/row_max.wgsl"

// The K (int8) and V (f16) words of one key tile that one invocation copies into workgroup memory: words lid,
// lid + WG, … of the tile, so that a warp reads consecutive words.
struct KvWords {
  k: array<vec4<u32>, KL_MAX>,
  v: array<QUAD, VL_MAX>,
}

// Reads this invocation's words of the key tile starting at row `kRow` of k8/v16, of which `keys` are keys of the
// segment (the rest read as zeros). All loads are issued together and land in registers: the caller does this a
// tile ahead, so their latency hides behind a tile of arithmetic (one load after another, waiting on each, cost
// more than the arithmetic on the H200).
fn fetch_kv(lid: u32, kRow: u32, keys: u32) -> KvWords {
  let W = DP / 16u;
  let QW = DP / 4u;
  var x: KvWords;
  for (var n = 0u; n < KL; n++) { // unroll
    let i = lid + n * WG;
    x.k[n] = select(vec4<u32>(0u), k8[kRow * W + i], i / W < keys);
  }
  for (var n = 0u; n < VL; n++) { // unroll
    let i = lid + n * WG;
    x.v[n] = select(QUAD(), v16[kRow * QW + i], i / QW < keys);
  }
  return x;
}

// Stores what fetch_kv read into kTile and vTile.
fn stage_kv(lid: u32, x: KvWords) {
  let W = DP / 16u;
  let QW = DP / 4u;
  for (var n = 0u; n < KL; n++) { // unroll
    let i = lid + n * WG;
    if (i < BK * W) {
      kTile[(i / W) * (W + 1u) + i % W] = x.k[n];
    }
  }
  for (var n = 0u; n < VL; n++) { // unroll
    let i = lid + n * WG;
    if (i < BK * QW) {
      vTile[i] = x.v[n];
    }
  }
}

// Channel quad `quad` of output row `resultRow` (query head h, batch b, token n): to the f32 result, or (STORE) to
// the output in its dtype, layout and strides; the padding quads (channels D … DP−1) are not stored.
fn store_quad(resultRow: u32, h: u32, b: u32, n: u32, quad: u32, o: vec4<f32>) {
  if (!STORE) {
    let bits = bitcast<vec4<u32>>(o);
    let at = (resultRow * (DP / 4u) + quad) * 2u;
    dst[at] = bits.xy;
    dst[at + 1u] = bits.zw;
    return;
  }
  let c = quad * 4u;
  if (c >= params.d) {
    return;
  }
  let s = params.outStrides;
  let at = params.outBase + b * s.x + h * s.y + n * s.z + c;
  store_out_quad(at, o);
}

// Key j (segment-local) is visible to row i iff j < nk and, causal, j ≤ i + nk − nq (bottom-right).
fn visible(i: u32, j: u32, nq: u32, nk: u32) -> bool {
  var v = j < nk;
  if (CAUSAL) {
    v = v && i32(j) <= i32(i) + i32(nk) - i32(nq);
  }
  return v;
}

// The P·V of one row and channel quad over the tile, from the P and V in workgroup memory, summed in f32: a WIDEN
// head's tile sum. P is at word `pWord` of each key's row of pTile, lane `lane`; V is quad `quad` of each key.
fn pv_tile_f32(pWord: u32, lane: u32, quad: u32) -> vec4<f32> {
  let ps = BQ / 4u + 1u;
  let QW = DP / 4u;
  var sum = vec4<f32>(0.0);
  for (var j = 0u; j < BK; j++) {
    let p = vec4<f32>(p4_load(pTile[j * ps + pWord]))[lane];
    sum = fma(vec4<f32>(p), vec4<f32>(quad_load(vTile[j * QW + quad])), sum);
  }
  return sum;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) grid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // Locals, not overrides derived from others: naga 29 panics on some of those when used in an index.
  let W = DP / 16u;      // vec4 words per int8 row
  let QW = DP / 4u;      // f16 quads per V row
  let rp = RQ / 4u;      // P4 words (and rowParts vectors) per invocation's rows
  let ps = BQ / 4u + 1u; // pTile words per key, rowParts vectors per tx
  let seg = segs[wg.z];
  let qTileIndex = select(wg.y, wg.x, TILES_FIRST);
  let rowBase = select(qTileIndex, select(grid.y, grid.x, TILES_FIRST) - 1u - qTileIndex, CAUSAL) * BQ;
  if (rowBase >= seg.nq) {
    return;
  }
  let h = select(wg.x, wg.y, TILES_FIRST);
  let kvh = h / params.group;
  let tx = lid % TX;
  let ty = lid / TX;
  let row0 = ty * RQ; // the invocation's first row in the tile
  let bh = seg.b * params.hq + h;
  let bkv = seg.b * params.hkv + kvh;
  let qRow0 = bh * params.nq + seg.q0;
  let kRow0 = bkv * params.nk + seg.k0;
  let wide = WIDEN && vWide[bkv] != 0u;

  for (var n = 0u; n < QL; n++) { // unroll
    let i = lid + n * WG;
    if (i < BQ * W) {
      qTile[i] = select(vec4<u32>(0u), q8[(qRow0 + rowBase) * W + i], rowBase + i / W < seg.nq);
    }
  }
  let sQ = scales[bh * params.qBlocks + seg.qBlockBase + rowBase / Q_BLOCK];
  // Whether the row maxima meet through rowParts, with a barrier per tile (lib/row_max.wgsl); uniform.
  let rowMaxViaMemory = row_max_setup(lid);

  // Per-row state for the whole loop. Arrays are set explicitly, here and per tile below: naga zero-fills a var
  // declared without an initializer once, at function entry, even where it is declared inside a loop.
  var mRun: array<f32, RQ_MAX>;
  var lPart: array<f32, RQ_MAX>; // the row's sum over this invocation's keys; the 16 tx are added at the end
  var o32: array<array<vec4<f32>, QD_MAX>, RQ_MAX>;
  for (var r = 0u; r < RQ; r++) { // unroll
    mRun[r] = NEG;
    lPart[r] = 0.0;
    for (var q = 0u; q < QD; q++) { // unroll
      o32[r][q] = vec4<f32>(0.0);
    }
  }

  let tiles = key_tiles(rowBase, seg.nq, seg.nk);
  var next = fetch_kv(lid, kRow0, seg.nk);
  for (var t = 0u; t < tiles; t++) {
    let key0 = t * BK;
    workgroupBarrier(); // the previous tile's P·V is done with vTile and pTile
    stage_kv(lid, next);
    workgroupBarrier();
    // The next tile's words are in flight during this tile's arithmetic (the last tile's fetch reads zeros).
    next = fetch_kv(lid, kRow0 + key0 + BK, select(0u, seg.nk - key0 - BK, seg.nk > key0 + BK));
    let cut = tile_cut(rowBase, key0, seg.nq, seg.nk);
    let scale = sQ * scales[params.kScaleOffset + bkv * params.kBlocks + seg.kBlockBase + key0 / K_BLOCK];

    // S = Qi·Kiᵀ: RQ rows × CK keys, exact in i32; the K words stay in registers across the rows.
    var acc: array<array<i32, CK_MAX>, RQ_MAX>;
    for (var r = 0u; r < RQ; r++) { // unroll
      for (var c = 0u; c < CK; c++) { // unroll
        acc[r][c] = 0;
      }
    }
    for (var w = 0u; w < W; w++) { // unroll
      var kv: array<vec4<u32>, CK_MAX>;
      for (var c = 0u; c < CK; c++) { // unroll
        kv[c] = kTile[(tx + TX * c) * (W + 1u) + w];
      }
      for (var r = 0u; r < RQ; r++) { // unroll
        let qv = qTile[(row0 + r) * W + w];
        for (var c = 0u; c < CK; c++) { // unroll
          acc[r][c] = dot16(qv, kv[c], acc[r][c]);
        }
      }
    }

    // Base-2 logits, masked, and each row's maximum over this invocation's keys, shared four rows at a time.
    var s: array<array<f32, CK_MAX>, RQ_MAX>;
    var parts: array<vec4<f32>, RP_MAX>;
    for (var g = 0u; g < RP; g++) { // unroll
      var part: vec4<f32>;
      for (var e = 0u; e < 4u; e++) { // unroll
        let r = g * 4u + e;
        for (var c = 0u; c < CK; c++) { // unroll
          let live = !cut || visible(rowBase + row0 + r, key0 + tx + TX * c, seg.nq, seg.nk);
          s[r][c] = select(NEG, f32(acc[r][c]) * scale, live);
        }
        var mx = s[r][0];
        for (var c = 1u; c < CK; c++) { // unroll
          mx = max(mx, s[r][c]);
        }
        part[e] = mx;
      }
      parts[g] = row_max_put(part, tx * ps + ty * rp + g, rowMaxViaMemory);
    }
    if (rowMaxViaMemory) {
      workgroupBarrier();
    }

    // Online softmax: the row maxima, P = exp2(S − m) to pTile as f16, the running sums, and each row's rescale
    // factor exp2(m_old − m_new) for its accumulator.
    var alpha: array<f32, RQ_MAX>;
    var pk: array<array<vec4<f32>, RP_MAX>, CK_MAX>;
    for (var g = 0u; g < RP; g++) { // unroll
      let mx = row_max_get(parts[g], ty * rp + g, ps, rowMaxViaMemory);
      for (var e = 0u; e < 4u; e++) { // unroll
        let r = g * 4u + e;
        let mNew = max(mRun[r], mx[e]);
        alpha[r] = exp2(mRun[r] - mNew);
        lPart[r] *= alpha[r];
        for (var c = 0u; c < CK; c++) { // unroll
          let p = select(0.0, exp2(s[r][c] - mNew), is_key(s[r][c]));
          lPart[r] += p;
          pk[c][g][e] = p;
        }
        mRun[r] = mNew;
      }
    }
    for (var c = 0u; c < CK; c++) { // unroll
      for (var g = 0u; g < RP; g++) { // unroll
        pTile[(tx + TX * c) * ps + ty * rp + g] = p4_store(pk[c][g]);
      }
    }
    workgroupBarrier();

    // O += P·V over the tile's keys: summed in ACC (f16 for "f16-block"), then into the rescaled f32 accumulator.
    var oTile: array<array<ACC, QD_MAX>, RQ_MAX>;
    for (var r = 0u; r < RQ; r++) { // unroll
      for (var q = 0u; q < QD; q++) { // unroll
        oTile[r][q] = acc_zero();
      }
    }
    for (var j0 = 0u; j0 < BK; j0 += PV_KEYS) {
      for (var jj = 0u; jj < PV_KEYS; jj++) { // unroll
        let j = j0 + jj;
        var v: array<H4, QD_MAX>;
        for (var q = 0u; q < QD; q++) { // unroll
          v[q] = quad_load(vTile[j * QW + tx + TX * q]);
        }
        for (var g = 0u; g < RP; g++) { // unroll
          let p = p4_load(pTile[j * ps + ty * rp + g]);
          for (var e = 0u; e < 4u; e++) { // unroll
            for (var q = 0u; q < QD; q++) { // unroll
              oTile[g * 4u + e][q] = pv_fma(oTile[g * 4u + e][q], p[e], v[q]);
            }
          }
        }
      }
    }
    if (wide) {
      for (var r = 0u; r < RQ; r++) { // unroll
        for (var q = 0u; q < QD; q++) { // unroll
          o32[r][q] = fma(o32[r][q], vec4<f32>(alpha[r]), pv_tile_f32(ty * rp + r / 4u, r % 4u, tx + TX * q));
        }
      }
    } else {
      for (var r = 0u; r < RQ; r++) { // unroll
        for (var q = 0u; q < QD; q++) { // unroll
          o32[r][q] = fma(o32[r][q], vec4<f32>(alpha[r]), acc_f32(oTile[r][q]));
        }
      }
    }
  }

  // O = acc / l to store_quad, and the natural-log LSE (plus the row term already in `lse`) when asked. A row
  // that saw no key gets zeros and −∞.
  workgroupBarrier();
  for (var g = 0u; g < RP; g++) { // unroll
    rowParts[tx * ps + ty * rp + g] = vec4<f32>(lPart[g * 4u], lPart[g * 4u + 1u], lPart[g * 4u + 2u], lPart[g * 4u + 3u]);
  }
  workgroupBarrier();
  for (var g = 0u; g < RP; g++) { // unroll
    var l4 = rowParts[ty * rp + g];
    for (var i = 1u; i < 16u; i++) { // unroll
      l4 += rowParts[i * ps + ty * rp + g];
    }
    for (var e = 0u; e < 4u; e++) { // unroll
      let r = g * 4u + e;
      let row = rowBase + row0 + r;
      if (row < seg.nq) {
        let l = l4[e];
        let seen = row_seen(mRun[r], l);
        let inv = select(0.0, 1.0 / l, seen);
        let out = qRow0 + row;
        for (var q = 0u; q < QD; q++) { // unroll
          store_quad(out, h, seg.b, seg.q0 + row, tx + TX * q, o32[r][q] * inv);
        }
        if (params.returnLse == 1u && tx == 0u) {
          lse[out] = select(bitcast<f32>(negInfBits), (mRun[r] + log2(l)) / LOG2E + lse[out], seen);
        }
      }
    }
  }
}
