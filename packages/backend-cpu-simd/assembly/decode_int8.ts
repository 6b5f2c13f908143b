// Few-query SageAttention over a KV cache (issue 14), split over key blocks (split-K), in WebAssembly SIMD128.
//
// A decode tile stacks the query rows of the heads that share one kv head (GQA): NH heads × NR rows each (NH·NR ≤
// TILE_ROWS), so each K and V block read from the cache serves all of them. A split task runs docs/DESIGN.md §2 steps
// 3–5 and 7 for its tile over key blocks [KB0, KB1) exactly as attention_int8.ts does over a whole sequence (same
// micro-kernels, K read one byte a value, same online softmax, same fixed-point P·V) and leaves the unnormalised
// partial state: per row the running max m (base 2), the sum l (P units) and acc[Dp]. The merge task of a tile combines
// its splits in split order, m = max m_s, l = Σ l_s·2^(m_s − m), acc = Σ acc_s·2^(m_s − m), O = acc / l: the result
// depends on the split size only, never on which thread ran what.
// Tiles: as attention_int8.ts (the scratch is the same). Knobs: the split size lives in src/kv-cache.ts.

import {
  D_CAUSAL, D_DP, D_FOLD, D_I0, D_K, D_KB0, D_KB1, D_NH, D_NK, D_NQ, D_NR, D_PART, D_Q, D_S_K, D_S_V, D_V, KEY_BLOCK,
  M_DP, M_KMEAN, M_OUT, M_PART, M_PART_BYTES, M_Q, M_ROWS, M_SPLITS, M_STATS, P_LEVELS, TILE_ROWS, keyLimit,
  resetRowState, scratchO, scratchP, scratchQ, scratchRows, scratchS,
} from "./tiles";
import { exp2Accurate } from "./exp2";
import { pvInt16, softmaxRowInt8 } from "./attention_int8";
import { quantizeQueryTile } from "./quantize_q";

/** Quantizes NH heads × NR rows (rows [i0, i0+NR) of each head, heads Nq·Dp f32 apart) into one stacked tile. */
function quantizeStacked(q: usize, nq: i32, i0: i32, nr: i32, nh: i32, Dp: i32, fold: f32, out: usize, scales: usize): void {
  for (let h = 0; h < nh; h++)
    quantizeQueryTile(q + <usize>(h * nq * Dp * 4), nq, i0, nr, Dp, fold, out + <usize>(h * nr * Dp * 2), scales + <usize>(h * nr * 4));
  const rows = nh * nr;
  for (let r = rows; r < ((rows + 3) & ~3); r++) {
    store<f32>(scales + <usize>(r * 4), 1.0);
    memory.fill(out + <usize>(r * Dp * 2), 0, <usize>(Dp * 2));
  }
}

/**
 * S[r][j] = Σ_d Q[r][d]·K[j][d] for rows [0, rows4) and keys [0, keys8) of a cache block, as `qkInt8` in
 * attention_int8.ts but with K stored one byte a value (i8 [Dp/2][64][2]): `v128.load8x8_s` widens 4 keys × a channel
 * pair to i16 as it loads, so the cache is read at 1 byte a K value.
 */
function qkInt8Narrow(qTile: usize, kBlock: usize, s: usize, rows4: i32, keys8: i32, Dp: i32): void {
  const rowBytes = <usize>(Dp * 2);
  const pairs = Dp >> 1;
  for (let r = 0; r < rows4; r += 4) {
    const q0 = qTile + <usize>r * rowBytes;
    for (let jc = 0; jc < keys8; jc += 8) {
      let a00 = i32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
      let kp = kBlock + <usize>(jc * 2);
      let qp = q0;
      const qpEnd = q0 + <usize>(pairs * 4);
      while (qp < qpEnd) {
        const k0 = v128.load8x8_s(kp), k1 = v128.load8x8_s(kp, 8);
        let x = v128.load32_splat(qp);
        a00 = i32x4.add(a00, i32x4.dot_i16x8_s(x, k0));
        a01 = i32x4.add(a01, i32x4.dot_i16x8_s(x, k1));
        x = v128.load32_splat(qp + rowBytes);
        a10 = i32x4.add(a10, i32x4.dot_i16x8_s(x, k0));
        a11 = i32x4.add(a11, i32x4.dot_i16x8_s(x, k1));
        x = v128.load32_splat(qp + 2 * rowBytes);
        a20 = i32x4.add(a20, i32x4.dot_i16x8_s(x, k0));
        a21 = i32x4.add(a21, i32x4.dot_i16x8_s(x, k1));
        x = v128.load32_splat(qp + 3 * rowBytes);
        a30 = i32x4.add(a30, i32x4.dot_i16x8_s(x, k0));
        a31 = i32x4.add(a31, i32x4.dot_i16x8_s(x, k1));
        kp += <usize>(KEY_BLOCK * 2);
        qp += 4;
      }
      const o = s + <usize>((r * KEY_BLOCK + jc) * 4);
      v128.store(o, a00); v128.store(o, a01, 16);
      v128.store(o, a10, 256); v128.store(o, a11, 272);
      v128.store(o, a20, 512); v128.store(o, a21, 528);
      v128.store(o, a30, 768); v128.store(o, a31, 784);
    }
  }
}

/** Partial state of one split: acc f32 [TILE_ROWS][Dp], then m f32 [TILE_ROWS], then l f32 [TILE_ROWS]. */
// @ts-ignore: decorator
@inline function partM(part: usize, Dp: i32): usize { return part + <usize>(TILE_ROWS * Dp * 4); }
// @ts-ignore: decorator
@inline function partL(part: usize, Dp: i32): usize { return partM(part, Dp) + <usize>(TILE_ROWS * 4); }

/** One split: the tile's rows over key blocks [KB0, KB1) of the cache, into its partial state. */
export function decodeSplitInt8(rec: usize, scratch: usize): void {
  const q = load<usize>(rec, D_Q), nq = load<i32>(rec, D_NQ), i0 = load<i32>(rec, D_I0), nr = load<i32>(rec, D_NR), nh = load<i32>(rec, D_NH);
  const k = load<usize>(rec, D_K), sK = load<usize>(rec, D_S_K), v = load<usize>(rec, D_V), sV = load<usize>(rec, D_S_V);
  const nk = load<i32>(rec, D_NK), kb0 = load<i32>(rec, D_KB0), kb1 = load<i32>(rec, D_KB1), part = load<usize>(rec, D_PART);
  const causal = load<i32>(rec, D_CAUSAL) != 0, Dp = load<i32>(rec, D_DP), fold = load<f32>(rec, D_FOLD);
  const qTile = scratchQ(scratch), s = scratchS(scratch, Dp), p = scratchP(scratch, Dp);
  const o = part; // the accumulator lives in the partial state directly
  const sQ = scratchRows(scratch, Dp);
  const rows = nh * nr;
  const rows4 = (rows + 3) & ~3;
  quantizeStacked(q, nq, i0, nr, nh, Dp, fold, qTile, sQ);
  memory.fill(o, 0, <usize>(rows4 * Dp * 4));
  resetRowState(sQ, rows4);
  const lastLimit = min(keyLimit(i0 + nr - 1, nq, nk, causal), kb1 * KEY_BLOCK);
  for (let j0 = kb0 * KEY_BLOCK; j0 < lastLimit; j0 += KEY_BLOCK) {
    const blk = j0 / KEY_BLOCK;
    const valid = min(KEY_BLOCK, lastLimit - j0);
    qkInt8Narrow(qTile, k + <usize>(blk * KEY_BLOCK * Dp), s, rows4, (valid + 7) & ~7, Dp);
    const sk = load<f32>(sK + <usize>(blk * 4));
    for (let r = 0; r < rows; r++)
      softmaxRowInt8(s + <usize>(r * KEY_BLOCK * 4), p + <usize>(r * KEY_BLOCK * 2), load<f32>(sQ + <usize>(r * 4)) * sk, j0,
        keyLimit(i0 + r % nr, nq, nk, causal), 0, 0, sQ + <usize>(r * 4));
    pvInt16(p, v + <usize>(blk * KEY_BLOCK * Dp * 2), sV + <usize>(blk * Dp * 4), o, sQ + <usize>(TILE_ROWS * 12), rows4, (valid + 1) >> 1, Dp);
  }
  for (let r = 0; r < rows; r++) {
    store<f32>(partM(part, Dp) + <usize>(r * 4), load<f32>(sQ + <usize>(r * 4), TILE_ROWS * 4));
    store<f32>(partL(part, Dp) + <usize>(r * 4), load<f32>(sQ + <usize>(r * 4), TILE_ROWS * 8));
  }
}

/** Merges a tile's splits in order into its output rows (and LSE statistics: m, l, q·mean as attention_int8.ts). */
export function decodeMerge(rec: usize): void {
  const part0 = load<usize>(rec, M_PART), splits = load<i32>(rec, M_SPLITS), rows = load<i32>(rec, M_ROWS);
  const out = load<usize>(rec, M_OUT), stats = load<usize>(rec, M_STATS), q = load<usize>(rec, M_Q), kmean = load<usize>(rec, M_KMEAN);
  const Dp = load<i32>(rec, M_DP), partBytes = <usize>load<i32>(rec, M_PART_BYTES);
  for (let r = 0; r < rows; r++) {
    let m: f32 = -Infinity;
    for (let sp = 0; sp < splits; sp++) m = max(m, load<f32>(partM(part0 + <usize>sp * partBytes, Dp) + <usize>(r * 4)));
    const dst = out + <usize>(r * Dp * 4);
    memory.fill(dst, 0, <usize>(Dp * 4));
    let l: f32 = 0;
    if (m != -Infinity)
      for (let sp = 0; sp < splits; sp++) {
        const part = part0 + <usize>sp * partBytes;
        const ms = load<f32>(partM(part, Dp) + <usize>(r * 4));
        if (ms == -Infinity) continue;
        const w: f32 = ms == m ? 1.0 : f32x4.extract_lane(exp2Accurate(f32x4.splat(ms - m)), 0);
        l += load<f32>(partL(part, Dp) + <usize>(r * 4)) * w;
        const wV = f32x4.splat(w);
        const acc = part + <usize>(r * Dp * 4);
        for (let d = 0; d < Dp; d += 4) {
          const at = dst + <usize>(d * 4);
          v128.store(at, f32x4.add(v128.load(at), f32x4.mul(v128.load(acc + <usize>(d * 4)), wV)));
        }
      }
    if (l > 0) {
      const inv = f32x4.splat(<f32>1.0 / l);
      for (let d = 0; d < Dp; d += 4) v128.store(dst + <usize>(d * 4), f32x4.mul(v128.load(dst + <usize>(d * 4)), inv));
    } else memory.fill(dst, 0, <usize>(Dp * 4));
    if (stats != 0) {
      let qm: f64 = 0;
      const qRow = q + <usize>(r * Dp * 4);
      if (kmean != 0) for (let d = 0; d < Dp; d++) qm += <f64>load<f32>(qRow + <usize>(d * 4)) * <f64>load<f32>(kmean + <usize>(d * 4));
      const so = stats + <usize>(r * 12);
      store<f32>(so, m);
      store<f32>(so, l / P_LEVELS, 4);
      store<f32>(so, <f32>qm, 8);
    }
  }
}
