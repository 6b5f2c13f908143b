// Exact attention for one query tile in f32 SIMD: the same-engine baseline for the int8 kernel (same tiles and
// online softmax, no quantization). Logits in base 2 (Q scaled by smScale·log2 e), exp2 to f32 accuracy,
// P·V in f32 straight from the V rows.
// Micro-kernels: 4 query rows × 8 keys (Q·Kᵀ, K block transposed) and 4 query rows × 8 channels (P·V),
// 8 f32x4 accumulators each.

import {
  A_CAUSAL, A_DP, A_FOLD, A_I0, A_K, A_MASK, A_MASK_KIND, A_MASK_STRIDE, A_NK, A_NQ, A_OUT, A_Q, A_ROWS, A_STATS, A_V,
  KEY_BLOCK, TILE_ROWS, keyLimit, resetRowState, scratchO, scratchP, scratchQ, scratchRows, scratchS,
} from "./tiles";
import { exp2Accurate } from "./exp2";
import { hideKeys } from "./mask";
import { madd } from "./madd";
import { scaleQueryTile } from "./quantize_q";

function qkF32(qTile: usize, kBlock: usize, s: usize, rows4: i32, keys8: i32, Dp: i32): void {
  const rowBytes = <usize>(Dp * 4);
  for (let r = 0; r < rows4; r += 4) {
    const q0 = qTile + <usize>r * rowBytes;
    for (let jc = 0; jc < keys8; jc += 8) {
      let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
      let kp = kBlock + <usize>(jc * 4);
      let qp = q0;
      for (let d = 0; d < Dp; d++) {
        const k0 = v128.load(kp), k1 = v128.load(kp, 16);
        let x = v128.load32_splat(qp);
        a00 = madd(x, k0, a00);
        a01 = madd(x, k1, a01);
        x = v128.load32_splat(qp + rowBytes);
        a10 = madd(x, k0, a10);
        a11 = madd(x, k1, a11);
        x = v128.load32_splat(qp + 2 * rowBytes);
        a20 = madd(x, k0, a20);
        a21 = madd(x, k1, a21);
        x = v128.load32_splat(qp + 3 * rowBytes);
        a30 = madd(x, k0, a30);
        a31 = madd(x, k1, a31);
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

function pvF32(p: usize, v: usize, o: usize, alpha: usize, rows4: i32, keys: i32, Dp: i32): void {
  const vRow = <usize>(Dp * 4);
  const pRow = <usize>(KEY_BLOCK * 4);
  for (let r = 0; r < rows4; r += 4) {
    const al0 = f32x4.splat(load<f32>(alpha + <usize>(r * 4)));
    const al1 = f32x4.splat(load<f32>(alpha + <usize>(r * 4), 4));
    const al2 = f32x4.splat(load<f32>(alpha + <usize>(r * 4), 8));
    const al3 = f32x4.splat(load<f32>(alpha + <usize>(r * 4), 12));
    const p0 = p + <usize>r * pRow;
    for (let dc = 0; dc < Dp; dc += 8) {
      const o0 = o + <usize>r * vRow + <usize>(dc * 4), o1 = o0 + vRow, o2 = o1 + vRow, o3 = o2 + vRow;
      let a00 = f32x4.mul(v128.load(o0), al0), a01 = f32x4.mul(v128.load(o0, 16), al0);
      let a10 = f32x4.mul(v128.load(o1), al1), a11 = f32x4.mul(v128.load(o1, 16), al1);
      let a20 = f32x4.mul(v128.load(o2), al2), a21 = f32x4.mul(v128.load(o2, 16), al2);
      let a30 = f32x4.mul(v128.load(o3), al3), a31 = f32x4.mul(v128.load(o3, 16), al3);
      let vp = v + <usize>(dc * 4);
      let pp = p0;
      for (let j = 0; j < keys; j++) {
        const v0 = v128.load(vp), v1 = v128.load(vp, 16);
        let x = v128.load32_splat(pp);
        a00 = madd(x, v0, a00);
        a01 = madd(x, v1, a01);
        x = v128.load32_splat(pp + pRow);
        a10 = madd(x, v0, a10);
        a11 = madd(x, v1, a11);
        x = v128.load32_splat(pp + 2 * pRow);
        a20 = madd(x, v0, a20);
        a21 = madd(x, v1, a21);
        x = v128.load32_splat(pp + 3 * pRow);
        a30 = madd(x, v0, a30);
        a31 = madd(x, v1, a31);
        vp += vRow;
        pp += 4;
      }
      v128.store(o0, a00); v128.store(o0, a01, 16);
      v128.store(o1, a10); v128.store(o1, a11, 16);
      v128.store(o2, a20); v128.store(o2, a21, 16);
      v128.store(o3, a30); v128.store(o3, a31, 16);
    }
  }
}

// @ts-ignore: decorator
@inline function softmaxRowF32(sRow: usize, pRow: usize, j0: i32, limit: i32, maskRow: usize, maskKind: i32, state: usize): void {
  if (maskKind != 0 || limit - j0 < KEY_BLOCK) hideKeys(sRow, j0, limit, maskRow, maskKind);
  let mx = f32x4.splat(-Infinity);
  for (let j = 0; j < KEY_BLOCK; j += 4) mx = f32x4.pmax(mx, v128.load(sRow + <usize>(j * 4)));
  const mOld = load<f32>(state, TILE_ROWS * 4);
  const mNew = max(mOld, max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3))));
  if (mNew == -Infinity) {
    store<f32>(state, 1.0, TILE_ROWS * 12);
    memory.fill(pRow, 0, <usize>(KEY_BLOCK * 4));
    return;
  }
  // exp2Accurate flushes below 2^-125; a row that saw nothing before has m = −∞, O = 0 and l = 0, so alpha is moot.
  const alpha = mOld == -Infinity ? <f32>0 : f32x4.extract_lane(exp2Accurate(f32x4.splat(mOld - mNew)), 0);
  const mV = f32x4.splat(mNew);
  let sum = f32x4.splat(0);
  for (let j = 0; j < KEY_BLOCK; j += 4) {
    const x = v128.load(sRow + <usize>(j * 4));
    // Hidden keys (−∞) must give exactly 0, not the 2^-125 floor.
    const e = v128.and(exp2Accurate(f32x4.sub(x, mV)), f32x4.ne(x, f32x4.splat(-Infinity)));
    sum = f32x4.add(sum, e);
    v128.store(pRow + <usize>(j * 4), e);
  }
  const t = f32x4.add(sum, i32x4.shuffle(sum, sum, 2, 3, 0, 1));
  const rowSum = f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1);
  store<f32>(state, load<f32>(state, TILE_ROWS * 8) * alpha + rowSum, TILE_ROWS * 8);
  store<f32>(state, mNew, TILE_ROWS * 4);
  store<f32>(state, alpha, TILE_ROWS * 12);
}

export function attentionF32(rec: usize, scratch: usize): void {
  const q = load<usize>(rec, A_Q), nq = load<i32>(rec, A_NQ), i0 = load<i32>(rec, A_I0), rows = load<i32>(rec, A_ROWS);
  const k = load<usize>(rec, A_K), v = load<usize>(rec, A_V), nk = load<i32>(rec, A_NK);
  const out = load<usize>(rec, A_OUT), stats = load<usize>(rec, A_STATS);
  const mask = load<usize>(rec, A_MASK), maskKind = load<i32>(rec, A_MASK_KIND), maskStride = load<i32>(rec, A_MASK_STRIDE);
  const causal = load<i32>(rec, A_CAUSAL) != 0, Dp = load<i32>(rec, A_DP), fold = load<f32>(rec, A_FOLD);

  const qTile = scratchQ(scratch), o = scratchO(scratch, Dp), s = scratchS(scratch, Dp), p = scratchP(scratch, Dp);
  const st0 = scratchRows(scratch, Dp); // rows: (unused), m, l, alpha, TILE_ROWS f32 each
  const rows4 = (rows + 3) & ~3;
  scaleQueryTile(q, i0, rows, Dp, fold, qTile);
  memory.fill(o, 0, <usize>(rows4 * Dp * 4));
  resetRowState(st0, rows4);
  const elemBytes: i32 = maskKind == 1 ? 1 : 4;
  const lastLimit = keyLimit(i0 + rows - 1, nq, nk, causal);
  for (let j0 = 0; j0 < lastLimit; j0 += KEY_BLOCK) {
    const blk = j0 / KEY_BLOCK;
    const valid = min(KEY_BLOCK, lastLimit - j0);
    qkF32(qTile, k + <usize>(blk * KEY_BLOCK * Dp * 4), s, rows4, (valid + 7) & ~7, Dp);
    for (let r = 0; r < rows; r++) {
      const i = i0 + r;
      const maskRow: usize = maskKind == 0 ? 0 : mask + <usize>(i * maskStride * elemBytes);
      softmaxRowF32(s + <usize>(r * KEY_BLOCK * 4), p + <usize>(r * KEY_BLOCK * 4), j0, keyLimit(i, nq, nk, causal), maskRow, maskKind, st0 + <usize>(r * 4));
    }
    pvF32(p, v + <usize>(j0 * Dp * 4), o, st0 + <usize>(TILE_ROWS * 12), rows4, valid, Dp);
  }
  for (let r = 0; r < rows; r++) {
    const i = i0 + r;
    const st = st0 + <usize>(r * 4);
    const l = load<f32>(st, TILE_ROWS * 8);
    const dst = out + <usize>(i * Dp * 4), src = o + <usize>(r * Dp * 4);
    if (l > 0) {
      const inv = f32x4.splat(<f32>1.0 / l);
      for (let d = 0; d < Dp; d += 4) v128.store(dst + <usize>(d * 4), f32x4.mul(v128.load(src + <usize>(d * 4)), inv));
    } else memory.fill(dst, 0, <usize>(Dp * 4));
    if (stats != 0) {
      const so = stats + <usize>(i * 12);
      store<f32>(so, load<f32>(st, TILE_ROWS * 4));
      store<f32>(so, l, 4);
      store<f32>(so, 0, 8);
    }
  }
}
