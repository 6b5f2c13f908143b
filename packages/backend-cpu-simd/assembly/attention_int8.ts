// SageAttention for one query tile (docs/DESIGN.md §2 steps 3–5 and 7; P·V in fixed point, see "Where backends
// differ"), in WebAssembly SIMD128.
//
// Per 64-key block: S = Qi·Kiᵀ exactly in int32 (i32x4.dot_i16x8_s on int8 values widened to i16), times sQ·sK →
// base-2 logits; online softmax (running max m, sum l) with a polynomial exp2; P quantized to [0, 8191] and
// P·V summed exactly in int32 with dot_i16x8_s against V quantized per (block, channel) to 13 bits, then scaled
// into an f32 accumulator. O = acc / l.
// Tiles: query tile TILE_ROWS × Dp (i16, 8 KiB at D=64), K block 64 × Dp (i16), logits 64 f32 per row,
// P 64 i16 per row, V block 64 × Dp (i16), accumulator TILE_ROWS × Dp f32.
// Micro-kernels: 4 query rows × 8 keys (Q·Kᵀ) and 4 query rows × 8 channels (P·V), 8 i32x4 accumulators each,
// so that accumulators and operands stay within the 16 xmm registers V8 has on x64.
// The relaxed-SIMD build keeps these integer paths and fuses the f32 multiply-adds (madd.ts). Its i8 dot
// (relaxed_dot_i8x16_i7x16_add_s) needs one operand in [0, 127], x86 reading it as unsigned; Sage's INT8 K spans
// [−127, 127] (255 values), so a zero-point form needs two relaxed dots per product (K + 127 split into two
// [0, 127] halves, minus 127·Σq): slower than dot_i16x8_s, itself faster than one relaxed dot here (docs/DESIGN.md
// §4, "WebAssembly facts").
// Both products run near the rate of a bare dot + i32x4.add loop (the add sharing the dot's pipes), so shapes that
// only save loads gain little; the alternatives tried and dropped are in NOTES.md.

import {
  A_CAUSAL, A_DP, A_FOLD, A_I0, A_K, A_KMEAN, A_MASK, A_MASK_KIND, A_MASK_STRIDE, A_NK, A_NQ, A_OUT, A_Q, A_ROWS, A_S_K,
  A_STATS, A_S_V, A_V, KEY_BLOCK, P_LEVELS, TILE_ROWS, keyLimit, resetRowState, scratchO, scratchP, scratchQ, scratchRows, scratchS,
} from "./tiles";
import { exp2Accurate, exp2Fast, hmax } from "./exp2";
import { hideKeys } from "./mask";
import { quantizeQueryTile } from "./quantize_q";
import { madd } from "./madd";
import { nearestI32 } from "./round";

/** S[r][j] = Σ_d Q[r][d]·K[j][d] for rows [0, rows4) and keys [0, keys8) of a block (int32, stored as i32). */
export function qkInt8(qTile: usize, kBlock: usize, s: usize, rows4: i32, keys8: i32, Dp: i32): void {
  const rowBytes = <usize>(Dp * 2);
  const pairs = Dp >> 1;
  for (let r = 0; r < rows4; r += 4) {
    const q0 = qTile + <usize>r * rowBytes;
    for (let jc = 0; jc < keys8; jc += 8) {
      let a00 = i32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
      let kp = kBlock + <usize>(jc * 4);
      let qp = q0;
      const qpEnd = q0 + <usize>(pairs * 4);
      while (qp < qpEnd) {
        const k0 = v128.load(kp), k1 = v128.load(kp, 16);
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
        kp += <usize>(KEY_BLOCK * 4);
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

/** O[r] = O[r]·alpha[r] + Σ_j P[r][j]·V[j] · sV for rows [0, rows4), over key pairs [0, pairs) of a block. */
export function pvInt16(p: usize, vBlock: usize, sV: usize, o: usize, alpha: usize, rows4: i32, pairs: i32, Dp: i32): void {
  const pairBytes = <usize>(Dp * 4);
  const pRow = <usize>(KEY_BLOCK * 2);
  for (let r = 0; r < rows4; r += 4) {
    const al0 = f32x4.splat(load<f32>(alpha + <usize>(r * 4)));
    const al1 = f32x4.splat(load<f32>(alpha + <usize>(r * 4), 4));
    const al2 = f32x4.splat(load<f32>(alpha + <usize>(r * 4), 8));
    const al3 = f32x4.splat(load<f32>(alpha + <usize>(r * 4), 12));
    const p0 = p + <usize>r * pRow;
    for (let dc = 0; dc < Dp; dc += 8) {
      let a00 = i32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
      let vp = vBlock + <usize>(dc * 4);
      let pp = p0;
      // P rows are KEY_BLOCK·2 bytes apart: constant offsets, which V8 folds into the loads' addressing (an added
      // pointer costs an instruction per load in this loop); one induction pointer bounds the loop.
      const ppEnd = p0 + <usize>(pairs * 4);
      while (pp < ppEnd) {
        const v0 = v128.load(vp), v1 = v128.load(vp, 16);
        let x = v128.load32_splat(pp);
        a00 = i32x4.add(a00, i32x4.dot_i16x8_s(x, v0));
        a01 = i32x4.add(a01, i32x4.dot_i16x8_s(x, v1));
        x = v128.load32_splat(pp, KEY_BLOCK * 2);
        a10 = i32x4.add(a10, i32x4.dot_i16x8_s(x, v0));
        a11 = i32x4.add(a11, i32x4.dot_i16x8_s(x, v1));
        x = v128.load32_splat(pp, KEY_BLOCK * 4);
        a20 = i32x4.add(a20, i32x4.dot_i16x8_s(x, v0));
        a21 = i32x4.add(a21, i32x4.dot_i16x8_s(x, v1));
        x = v128.load32_splat(pp, KEY_BLOCK * 6);
        a30 = i32x4.add(a30, i32x4.dot_i16x8_s(x, v0));
        a31 = i32x4.add(a31, i32x4.dot_i16x8_s(x, v1));
        vp += pairBytes;
        pp += 4;
      }
      const s0 = v128.load(sV + <usize>(dc * 4)), s1 = v128.load(sV + <usize>(dc * 4), 16);
      const rowBytes = <usize>(Dp * 4);
      const o0 = o + <usize>r * rowBytes + <usize>(dc * 4);
      v128.store(o0, madd(f32x4.convert_i32x4_s(a00), s0, f32x4.mul(v128.load(o0), al0)));
      v128.store(o0, madd(f32x4.convert_i32x4_s(a01), s1, f32x4.mul(v128.load(o0, 16), al0)), 16);
      const o1 = o0 + rowBytes;
      v128.store(o1, madd(f32x4.convert_i32x4_s(a10), s0, f32x4.mul(v128.load(o1), al1)));
      v128.store(o1, madd(f32x4.convert_i32x4_s(a11), s1, f32x4.mul(v128.load(o1, 16), al1)), 16);
      const o2 = o1 + rowBytes;
      v128.store(o2, madd(f32x4.convert_i32x4_s(a20), s0, f32x4.mul(v128.load(o2), al2)));
      v128.store(o2, madd(f32x4.convert_i32x4_s(a21), s1, f32x4.mul(v128.load(o2, 16), al2)), 16);
      const o3 = o2 + rowBytes;
      v128.store(o3, madd(f32x4.convert_i32x4_s(a30), s0, f32x4.mul(v128.load(o3), al3)));
      v128.store(o3, madd(f32x4.convert_i32x4_s(a31), s1, f32x4.mul(v128.load(o3, 16), al3)), 16);
    }
  }
}

/**
 * One row of the online softmax: int32 logits × scale → base-2 logits (keys hidden as asked), new running max,
 * P = exp2(s − m) quantized to [0, 8191] as i16, and the row's m, l, alpha updated (state: m, l, alpha at
 * TILE_ROWS·4, ·8, ·12 bytes).
 * Rows with nothing to hide (all but causal-diagonal, tail and masked blocks) take the max over the int32 logits
 * (scaling by a positive factor keeps the order) and scale inside the exp2 pass: one pass fewer, no f32 row stored.
 * alpha is exactly 1 while the max holds (most blocks after the first few), so O and l are rescaled only when it grows.
 */
// @ts-ignore: decorator
@inline export function softmaxRowInt8(sRow: usize, pRow: usize, scale: f32, j0: i32, limit: i32, maskRow: usize, maskKind: i32, state: usize): void {
  const scV = f32x4.splat(scale);
  const hide = maskKind != 0 || limit - j0 < KEY_BLOCK;
  let blockMax: f32;
  if (hide) {
    for (let j = 0; j < KEY_BLOCK; j += 4) {
      const p = sRow + <usize>(j * 4);
      v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(v128.load(p)), scV));
    }
    hideKeys(sRow, j0, limit, maskRow, maskKind);
    let mx = f32x4.splat(-Infinity);
    for (let j = 0; j < KEY_BLOCK; j += 4) mx = f32x4.pmax(mx, v128.load(sRow + <usize>(j * 4)));
    blockMax = hmax(mx);
  } else {
    let mx = v128.load(sRow);
    for (let j = 4; j < KEY_BLOCK; j += 4) mx = i32x4.max_s(mx, v128.load(sRow + <usize>(j * 4)));
    mx = i32x4.max_s(mx, i32x4.shuffle(mx, mx, 2, 3, 0, 1));
    mx = i32x4.max_s(mx, i32x4.shuffle(mx, mx, 1, 0, 3, 2));
    blockMax = <f32>i32x4.extract_lane(mx, 0) * scale;
  }
  const mOld = load<f32>(state, TILE_ROWS * 4);
  const mNew = max(mOld, blockMax);
  if (mNew == -Infinity) {
    store<f32>(state, 1.0, TILE_ROWS * 12);
    memory.fill(pRow, 0, <usize>(KEY_BLOCK * 2));
    return;
  }
  // exp2Accurate flushes below 2^-125: a row that saw nothing before has O = 0 and l = 0, so that alpha is moot.
  const alpha: f32 = mNew > mOld ? f32x4.extract_lane(exp2Accurate(f32x4.splat(mOld - mNew)), 0) : 1.0;
  let sum = i32x4.splat(0);
  if (hide) {
    const mV = f32x4.splat(mNew);
    for (let j = 0; j < KEY_BLOCK; j += 8) {
      const s = sRow + <usize>(j * 4);
      const a = nearestI32(exp2Fast(f32x4.sub(v128.load(s), mV), P_LEVELS));
      const b = nearestI32(exp2Fast(f32x4.sub(v128.load(s, 16), mV), P_LEVELS));
      sum = i32x4.add(sum, i32x4.add(a, b));
      v128.store(pRow + <usize>(j * 2), i16x8.narrow_i32x4_s(a, b));
    }
  } else {
    // 16 keys per trip: V8 keeps a loop's own instructions (counter, bound, stack check, the splat of −m it
    // rematerializes) per trip, a quarter of this loop at 8 keys; 1% faster kernel (N=1024, one thread).
    const negM = f32x4.splat(-mNew);
    for (let j = 0; j < KEY_BLOCK; j += 16) {
      const s = sRow + <usize>(j * 4);
      const a = nearestI32(exp2Fast(madd(f32x4.convert_i32x4_s(v128.load(s)), scV, negM), P_LEVELS));
      const b = nearestI32(exp2Fast(madd(f32x4.convert_i32x4_s(v128.load(s, 16)), scV, negM), P_LEVELS));
      const c = nearestI32(exp2Fast(madd(f32x4.convert_i32x4_s(v128.load(s, 32)), scV, negM), P_LEVELS));
      const d = nearestI32(exp2Fast(madd(f32x4.convert_i32x4_s(v128.load(s, 48)), scV, negM), P_LEVELS));
      sum = i32x4.add(sum, i32x4.add(i32x4.add(a, b), i32x4.add(c, d)));
      v128.store(pRow + <usize>(j * 2), i16x8.narrow_i32x4_s(a, b));
      v128.store(pRow + <usize>(j * 2), i16x8.narrow_i32x4_s(c, d), 16);
    }
  }
  const total = i32x4.add(sum, i32x4.shuffle(sum, sum, 2, 3, 0, 1));
  const rowSum = <f32>(i32x4.extract_lane(total, 0) + i32x4.extract_lane(total, 1));
  store<f32>(state, load<f32>(state, TILE_ROWS * 8) * alpha + rowSum, TILE_ROWS * 8);
  store<f32>(state, mNew, TILE_ROWS * 4);
  store<f32>(state, alpha, TILE_ROWS * 12);
}

/** Runs one attention record (see tiles.ts) with `scratch` as this thread's working memory. */
export function attentionInt8(rec: usize, scratch: usize): void {
  const q = load<usize>(rec, A_Q), nq = load<i32>(rec, A_NQ), i0 = load<i32>(rec, A_I0), rows = load<i32>(rec, A_ROWS);
  const k = load<usize>(rec, A_K), sK = load<usize>(rec, A_S_K), v = load<usize>(rec, A_V), sV = load<usize>(rec, A_S_V);
  const nk = load<i32>(rec, A_NK), out = load<usize>(rec, A_OUT), stats = load<usize>(rec, A_STATS), kmean = load<usize>(rec, A_KMEAN);
  const mask = load<usize>(rec, A_MASK), maskKind = load<i32>(rec, A_MASK_KIND), maskStride = load<i32>(rec, A_MASK_STRIDE);
  const causal = load<i32>(rec, A_CAUSAL) != 0, Dp = load<i32>(rec, A_DP), fold = load<f32>(rec, A_FOLD);

  const qTile = scratchQ(scratch), o = scratchO(scratch, Dp), s = scratchS(scratch, Dp), p = scratchP(scratch, Dp);
  const sQ = scratchRows(scratch, Dp); // rows: sQ, then m, l, alpha, TILE_ROWS f32 each
  const rows4 = (rows + 3) & ~3;
  quantizeQueryTile(q, nq, i0, rows, Dp, fold, qTile, sQ);
  memory.fill(o, 0, <usize>(rows4 * Dp * 4));
  resetRowState(sQ, rows4);
  const elemBytes: i32 = maskKind == 1 ? 1 : 4;
  const lastLimit = keyLimit(i0 + rows - 1, nq, nk, causal);
  for (let j0 = 0; j0 < lastLimit; j0 += KEY_BLOCK) {
    const blk = j0 / KEY_BLOCK;
    const valid = min(KEY_BLOCK, lastLimit - j0);
    qkInt8(qTile, k + <usize>(blk * KEY_BLOCK * Dp * 2), s, rows4, (valid + 7) & ~7, Dp);
    const sk = load<f32>(sK + <usize>(blk * 4));
    for (let r = 0; r < rows; r++) {
      const i = i0 + r;
      const maskRow: usize = maskKind == 0 ? 0 : mask + <usize>(i * maskStride * elemBytes);
      softmaxRowInt8(s + <usize>(r * KEY_BLOCK * 4), p + <usize>(r * KEY_BLOCK * 2), load<f32>(sQ + <usize>(r * 4)) * sk, j0,
        keyLimit(i, nq, nk, causal), maskRow, maskKind, sQ + <usize>(r * 4));
    }
    pvInt16(p, v + <usize>(blk * KEY_BLOCK * Dp * 2), sV + <usize>(blk * Dp * 4), o, sQ + <usize>(TILE_ROWS * 12), rows4, (valid + 1) >> 1, Dp);
  }
  for (let r = 0; r < rows; r++) {
    const i = i0 + r;
    const st = sQ + <usize>(r * 4);
    const l = load<f32>(st, TILE_ROWS * 8);
    const dst = out + <usize>(i * Dp * 4), src = o + <usize>(r * Dp * 4);
    if (l > 0) {
      const inv = f32x4.splat(<f32>1.0 / l);
      for (let d = 0; d < Dp; d += 4) v128.store(dst + <usize>(d * 4), f32x4.mul(v128.load(src + <usize>(d * 4)), inv));
    } else memory.fill(dst, 0, <usize>(Dp * 4));
    if (stats != 0) {
      let qm: f64 = 0;
      const qRow = q + <usize>(i * Dp * 4);
      if (kmean != 0) for (let d = 0; d < Dp; d++) qm += <f64>load<f32>(qRow + <usize>(d * 4)) * <f64>load<f32>(kmean + <usize>(d * 4));
      const so = stats + <usize>(i * 12);
      store<f32>(so, load<f32>(st, TILE_ROWS * 4));
      store<f32>(so, l / P_LEVELS, 4);
      store<f32>(so, <f32>qm, 8);
    }
  }
}
