// The exact kernel's tile engine: the tile shape, the online softmax over one key tile (base 2), P·V over one
// tile, and the epilogue. Included by attention_exact.wgsl (attention_int8.wgsl has its own register tiles), after
// the P·V variant (lib/pv_f16.wgsl, pv_f16emu.wgsl or pv_f32.wgsl), which defines PT (P's type in workgroup
// memory), QUAD (four f16 channels), ACC (a quad's per-tile accumulator), round_p, acc_zero, acc_fma, acc_f32.
//
// A workgroup is 16 × 16 threads over BQ query rows; thread (ty, tx) owns rows ty·RQ … ty·RQ+RQ−1 throughout.
//   S = Q·Kᵀ: it computes keys tx, tx+16, … of the tile (CK of them) for its rows.
//   O += P·V: it owns channels tx·4·QD … of its rows (QD quads of four channels).
// Row maxima and sums meet in workgroup memory (`rowParts`: one slot per row and tx).
// Loops marked `// unroll` are unrolled by the host (shaders.ts) with the tile's counts: per-thread arrays are
// then indexed by constants only, so they live in registers (naga and drivers do not unroll them reliably).

override BQ: u32 = 64u;   // query rows per workgroup: 16, 32 or 64
override BK: u32 = 32u;   // keys per tile: 16, 32 or 64
override DP: u32 = 128u;  // head dim padded to a multiple of 64
override CAUSAL: bool = false;

//#include "lib/attention_params.wgsl"

override RQ: u32 = BQ / 16u;
override CK: u32 = BK / 16u;
override QD: u32 = DP / 64u;
const RQ_MAX: u32 = 4u;
const CK_MAX: u32 = 4u;
const QD_MAX: u32 = 4u;
// V tile as f16 quads: [key][DP/4].
var<workgroup> vTile: array<QUAD, BK * DP / 4u>;
// P tile: [key][row], rows padded by P_PAD (from the P·V variant) so that the 16 tx threads storing one row
// group hit different banks; P·V then reads a thread's RQ consecutive rows of one key together. (The stride is
// spelled out: naga 29 panics on some overrides derived from others, e.g. one used in an index.)
var<workgroup> pTile: array<PT, BK * (BQ + P_PAD)>;
// Per-row partial maxima / sums: [row][16 tx]. Scalars: a store to one lane of a shared vec4 can be a
// read-modify-write of the whole vector (lavapipe), which loses its neighbours' stores.
var<workgroup> rowParts: array<f32, BQ * 16u>;

var<private> s: array<array<f32, CK_MAX>, RQ_MAX>;
var<private> mRun: array<f32, RQ_MAX>;
var<private> lPart: array<f32, RQ_MAX>;
var<private> o32: array<array<vec4<f32>, QD_MAX>, RQ_MAX>;
var<private> oTile: array<array<ACC, QD_MAX>, RQ_MAX>;

fn share_row_part(row: u32, tx: u32, x: f32) {
  rowParts[row * 16u + tx] = x;
}

fn row_max(row: u32) -> f32 {
  var m = rowParts[row * 16u];
  for (var i = 1u; i < 16u; i++) {
    m = max(m, rowParts[row * 16u + i]);
  }
  return m;
}

fn row_sum(row: u32) -> f32 {
  var l = 0.0;
  for (var i = 0u; i < 16u; i++) {
    l += rowParts[row * 16u + i];
  }
  return l;
}

// Masks s (keys beyond the segment, and causally hidden keys) and shares each row's partial maximum.
// Key j (segment-local) is visible to row i iff j < nk and, causal, j ≤ i + nk − nq (bottom-right).
fn mask_and_share_max(ty: u32, tx: u32, rowBase: u32, key0: u32, nq: u32, nk: u32) {
  let cut = tile_cut(rowBase, key0, nq, nk);
  for (var r = 0u; r < RQ; r++) { // unroll
    let i = i32(rowBase + ty * RQ + r);
    var mx = NEG;
    for (var c = 0u; c < CK; c++) { // unroll
      let j = key0 + tx + 16u * c;
      var visible = !cut || j < nk;
      if (CAUSAL) {
        visible = visible && (!cut || i32(j) <= i + i32(nk) - i32(nq));
      }
      s[r][c] = select(NEG, s[r][c], visible);
      mx = max(mx, s[r][c]);
    }
    share_row_part(ty * RQ + r, tx, mx);
  }
}

// After the partial maxima are shared: new running maxima, P = exp2(S − m) (to f16 in pTile), the running
// sums, and the accumulator rescaled by exp2(m_old − m_new).
fn softmax_tile(ty: u32, tx: u32) {
  for (var r = 0u; r < RQ; r++) { // unroll
    let row = ty * RQ + r;
    let mNew = max(mRun[r], row_max(row));
    let alpha = exp2(mRun[r] - mNew);
    var sum = 0.0;
    for (var c = 0u; c < CK; c++) { // unroll
      let p = select(0.0, exp2(s[r][c] - mNew), is_key(s[r][c]));
      sum += p;
      pTile[(tx + 16u * c) * (BQ + P_PAD) + row] = round_p(p);
    }
    lPart[r] = lPart[r] * alpha + sum;
    for (var q = 0u; q < QD; q++) { // unroll
      o32[r][q] *= alpha;
    }
    mRun[r] = mNew;
  }
}

// O += P·V for the thread's rows and channel quads over the tile's keys: summed per tile in ACC (f16 for
// "f16-block"), then added to the f32 accumulator.
fn pv_tile(ty: u32, tx: u32) {
  for (var r = 0u; r < RQ; r++) { // unroll
    for (var q = 0u; q < QD; q++) { // unroll
      oTile[r][q] = acc_zero();
    }
  }
  for (var j0 = 0u; j0 < BK; j0 += 4u) {
    for (var jj = 0u; jj < 4u; jj++) { // unroll
      let j = j0 + jj;
      var v: array<QUAD, QD_MAX>;
      for (var q = 0u; q < QD; q++) { // unroll
        v[q] = vTile[j * (DP / 4u) + tx * QD + q];
      }
      for (var r = 0u; r < RQ; r++) { // unroll
        let p = pTile[j * (BQ + P_PAD) + ty * RQ + r];
        for (var q = 0u; q < QD; q++) { // unroll
          oTile[r][q] = acc_fma(oTile[r][q], p, v[q]);
        }
      }
    }
  }
  for (var r = 0u; r < RQ; r++) { // unroll
    for (var q = 0u; q < QD; q++) { // unroll
      o32[r][q] += acc_f32(oTile[r][q]);
    }
  }
}

fn init_rows() {
  for (var r = 0u; r < RQ; r++) { // unroll
    mRun[r] = NEG;
    lPart[r] = 0.0;
    for (var q = 0u; q < QD; q++) { // unroll
      o32[r][q] = vec4<f32>(0.0);
    }
  }
}

// O = acc / l into `result` ([b, head, token, DP] f32), and the natural-log LSE (plus the row term already in
// `lse`) when asked. A row that saw no key gets zeros and −∞.
fn finish(ty: u32, tx: u32, rowBase: u32, nq: u32, outRow0: u32) {
  workgroupBarrier();
  for (var r = 0u; r < RQ; r++) { // unroll
    share_row_part(ty * RQ + r, tx, lPart[r]);
  }
  workgroupBarrier();
  for (var r = 0u; r < RQ; r++) { // unroll
    let row = ty * RQ + r;
    if (rowBase + row < nq) {
      let l = row_sum(row);
      let seen = row_seen(mRun[r], l);
      let inv = select(0.0, 1.0 / l, seen);
      let out = outRow0 + rowBase + row;
      for (var q = 0u; q < QD; q++) { // unroll
        result[out * (DP / 4u) + tx * QD + q] = o32[r][q] * inv;
      }
      if (params.returnLse == 1u && tx == 0u) {
        lse[out] = select(bitcast<f32>(negInfBits), (mRun[r] + log2(l)) / LOG2E + lse[out], seen);
      }
    }
  }
}
