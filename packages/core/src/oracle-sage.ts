import { type Problem, segments } from "./problem.js";
import { E4M3_MAX, K_BLOCK, kScaleCount, kScaleIndex, LOG2E, P_BLOCK, qRowsPerScale, U8_MAX } from "./constants.js";
import { type E4m3Channels, quantizeChannelsE4m3, roundE4m3 } from "./fp8.js";
import {
  channelMean,
  type Int8Channels,
  qFold,
  quantizeChannelsInt8,
  quantizeGrouped,
  quantizeRows,
} from "./quantize.js";
import type { Reference } from "./oracle-exact.js";
import { rowVisibility } from "./visibility.js";

const F16_ROUND_MAGIC = 6755399441055744; // 1.5·2^52: adding and subtracting it rounds to an integer, ties to even
const SPLIT = 4398046511105; // 2^42 + 1: Dekker's split keeps the top 53 − 42 = 11 significant bits (an f16 significand)

/** Rounds to the nearest f16 value quickly (the oracle calls it once per P·V product); exact ties may round either way. */
function r16(x: number): number {
  const a = Math.abs(x);
  if (a >= 65520) return x > 0 ? Infinity : -Infinity;
  // f16 subnormals are multiples of 2^-24.
  if (a < 6.103515625e-5) return (x * 16777216 + F16_ROUND_MAGIC - F16_ROUND_MAGIC) / 16777216;
  const c = x * SPLIT;
  return c - (c - x);
}

/** Rounds x ≥ 0 to the nearest integer, ties to even (as the f16 conversion that makes a kernel's UINT8 P rounds). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 === 1 ? r - 1 : r;
}

/**
 * int8 P·V of one query row (docs/DESIGN.md §2 step 5) into `out[o0, o0+D)`, from the row's base-2 logits `s` over
 * its `limit` visible keys (−∞ for hidden ones) and its max `m`. Per block b of P_BLOCK keys:
 * u_j = round(255 · 2^(s_j − bmax_b)) (ties to even), the integer sums Σ_j u_j · v8[j][d] (exact: |sum| < 2^22) and
 * Σ_j u_j, weighted by 2^(bmax_b − m) / 255; then O[d] = sV[d] · Σ_b … / l̂, l̂ the sum of the rounded P (so the
 * weights of O sum to one: a key whose P rounds to 0 drops out of l̂ as it does out of the sum above). Uses the final
 * m (two passes over the row), which equals a kernel's online rescaling in exact arithmetic. `acc` and `blockAcc`
 * are scratch of length D.
 */
function int8Row(
  s: Float64Array,
  limit: number,
  m: number,
  v8: Int8Channels,
  out: Float64Array,
  o0: number,
  acc: Float64Array,
  blockAcc: Float64Array,
): void {
  const D = acc.length;
  acc.fill(0);
  let lHat = 0;
  for (let j0 = 0; j0 < limit; j0 += P_BLOCK) {
    const j1 = Math.min(limit, j0 + P_BLOCK);
    let bmax = -Infinity;
    for (let j = j0; j < j1; j++) if (s[j] > bmax) bmax = s[j];
    if (bmax === -Infinity) continue; // no visible key in the block
    blockAcc.fill(0);
    let uSum = 0;
    for (let j = j0; j < j1; j++) {
      const u = roundHalfEven(U8_MAX * Math.pow(2, s[j] - bmax));
      if (u === 0) continue;
      uSum += u;
      for (let d = 0; d < D; d++) blockAcc[d] += u * v8.values[j * D + d];
    }
    const w = Math.pow(2, bmax - m) / U8_MAX;
    lHat += w * uSum;
    for (let d = 0; d < D; d++) acc[d] += w * blockAcc[d];
  }
  for (let d = 0; d < D; d++) out[o0 + d] = (v8.scales[d] * acc[d]) / lHat;
}

/**
 * SageAttention emulated step by step (docs/DESIGN.md §2, steps 1–7) on canonical HND f32 inputs: K smoothed by its
 * mean over tokens, Q (128-token blocks; 16 with qkGranularity "warp", 1 with "row" and "thread"; smScale·log2e
 * folded) and K (64-token blocks; 16 adjacent keys with "row", 16 in the MMA layout's groups with "thread")
 * quantized to INT8, integer dot products, online softmax in base 2 over 64-key
 * blocks, P and V rounded to f16, P·V summed in f16 within a block then in f32 (or f32 throughout) — or, with "fp8",
 * 448·P and per-channel scaled V rounded to e4m3, the softmax's blocks 128 keys (P_BLOCK), each block's exact sum
 * rounded to f32 once and added up, l the sum of the rounded P — or, with
 * "int8", P as 0..255 per (row, 128-key block) and V as INT8 per channel, each block's integer sum scaled and added up
 * (`int8Row`) — LSE with the smoothing term restored. Unvalidated non-finite inputs propagate: a quantization block
 * (or, with fp8 and int8, a V channel) holding NaN/±inf gets a NaN scale, so every row reading it comes out NaN (the
 * block shares one scale).
 * `kMean`, when given, is the smoothing mean to use instead of computing it (a KV cache fixes it at its first append):
 * f32 [S, Hkv, D] for S segments (B without varlen), the mean of (segment s, kv head h) at (s·Hkv + h)·D.
 */
export function sageReference(
  p: Problem,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  kMean?: Float32Array,
): Reference {
  const { Hq, Hkv, Nq, Nk, D, group, smScale } = p;
  const output = new Float64Array(p.B * Hq * Nq * D);
  const lse = new Float64Array(p.B * Hq * Nq).fill(-Infinity);
  const fold = qFold(smScale);
  const f16Blocks = p.pvAccumulation === "f16-block";
  const fp8 = p.pvAccumulation === "fp8";
  const int8 = p.pvAccumulation === "int8";
  const gran = p.qkGranularity;
  const qBlock = qRowsPerScale(gran);
  // Stage v-conversion: V to f16 (fp8 and int8 quantize per sequence and kv head below instead).
  const v16 = new Float64Array(fp8 || int8 ? 0 : v.length);
  for (let i = 0; i < v16.length; i++) v16[i] = r16(v[i]);
  // The online softmax's key block: K_BLOCK, or for fp8 P_BLOCK (one Hopper kernel's tile: its row max, e4m3's
  // reference for 448·P, moves per tile, and each tile's partial is one MMA accumulator).
  const pvBlock = fp8 ? P_BLOCK : K_BLOCK;
  const s = new Float64Array(pvBlock);
  // int8 keeps the row's logits for a second pass (int8Row); the block loop then only finds m and l.
  const sRow = new Float64Array(int8 ? Nk : 0);
  const acc = new Float64Array(D);
  const blockAcc = new Float64Array(D);
  segments(p).forEach((seg, si) => {
    for (let kvh = 0; kvh < Hkv; kvh++) {
      const kvRow0 = (seg.b * Hkv + kvh) * Nk + seg.k0;
      // Stages k-mean and k-quantization.
      const mean = kMean
        ? kMean.subarray((si * Hkv + kvh) * D, (si * Hkv + kvh + 1) * D)
        : p.smoothK
        ? channelMean(k, kvRow0, seg.nk, D)
        : new Float32Array(D);
      const kq = quantizeGrouped(k, kvRow0, seg.nk, D, (j) => kScaleIndex(gran, j), kScaleCount(gran, seg.nk), 1, mean);
      const sK = Float32Array.from({ length: seg.nk }, (_, j) => kq.scales[kScaleIndex(gran, j)]); // key j's scale
      const v8: E4m3Channels | undefined = fp8 ? quantizeChannelsE4m3(v, kvRow0, seg.nk, D) : undefined;
      const vi: Int8Channels | undefined = int8 ? quantizeChannelsInt8(v, kvRow0, seg.nk, D) : undefined;
      for (let h = kvh * group; h < (kvh + 1) * group; h++) {
        const qRow0 = (seg.b * Hq + h) * Nq + seg.q0;
        const qq = quantizeRows(q, qRow0, seg.nq, D, qBlock, fold); // stage q-quantization
        // Stage attention: logits, online softmax and P·V per 64-key block.
        for (let i = 0; i < seg.nq; i++) {
          const sQ = qq.scales[Math.floor(i / qBlock)];
          const { limit, bias } = rowVisibility(p, seg, h, i);
          let m = -Infinity;
          let l = 0;
          let poisoned = false;
          acc.fill(0);
          for (let j0 = 0; j0 < limit; j0 += pvBlock) {
            const j1 = Math.min(limit, j0 + pvBlock);
            let bmax = -Infinity;
            for (let j = j0; j < j1; j++) {
              const scale = sQ * sK[j];
              let dot = 0;
              for (let d = 0; d < D; d++) dot += qq.values[i * D + d] * kq.values[j * D + d];
              const x = Math.fround(dot * scale) + (bias ? bias(j) * LOG2E : 0);
              if (Number.isNaN(x)) poisoned = true;
              s[j - j0] = x;
              if (vi) sRow[j] = x;
              if (x > bmax) bmax = x;
            }
            const mNew = Math.max(m, bmax);
            if (mNew === -Infinity) continue;
            const alpha = m === -Infinity ? 0 : Math.pow(2, m - mNew);
            l *= alpha;
            for (let d = 0; d < D; d++) acc[d] *= alpha;
            blockAcc.fill(0);
            for (let j = j0; j < j1; j++) {
              const pj = Math.pow(2, s[j - j0] - mNew);
              if (v8) {
                // e4m3 products are exact in f64, and so is their block sum (multiples of 2^-18 below 2^24). l sums
                // the rounded P, as the P·V does: the row's weights are then exactly the ones its output averages.
                const p8 = roundE4m3(pj * E4M3_MAX);
                l += p8 / E4M3_MAX;
                const vb = j * D;
                for (let d = 0; d < D; d++) blockAcc[d] += p8 * v8.values[vb + d];
                continue;
              }
              l += pj;
              if (vi) continue;
              const p16 = r16(pj); // no skip at p = 0: 0·inf must stay NaN
              const vb = (kvRow0 + j) * D;
              if (f16Blocks) { for (let d = 0; d < D; d++) blockAcc[d] = r16(blockAcc[d] + p16 * v16[vb + d]); }
              else for (let d = 0; d < D; d++) blockAcc[d] += p16 * v16[vb + d];
            }
            // fp8's two levels: the block's partial is one f32 (an MMA accumulator), then joins the f32 output sum.
            if (v8) { for (let d = 0; d < D; d++) acc[d] += Math.fround(blockAcc[d]); }
            else for (let d = 0; d < D; d++) acc[d] += blockAcc[d];
            m = mNew;
          }
          // Stage output-store (the js backend converts to the output dtype and layout: fromCanonicalF32).
          const row = qRow0 + i;
          if (poisoned) {
            output.fill(NaN, row * D, row * D + D);
            lse[row] = NaN;
            continue;
          }
          if (m === -Infinity || l === 0) continue;
          if (vi) int8Row(sRow, limit, m, vi, output, row * D, acc, blockAcc);
          else if (v8) { for (let d = 0; d < D; d++) output[row * D + d] = (acc[d] * v8.scales[d]) / (E4M3_MAX * l); }
          else for (let d = 0; d < D; d++) output[row * D + d] = acc[d] / l;
          let qDotMean = 0;
          if (p.smoothK || kMean) { for (let d = 0; d < D; d++) qDotMean += q[row * D + d] * mean[d]; }
          lse[row] = (m + Math.log2(l)) / LOG2E + smScale * qDotMean;
        }
      }
    }
  });
  return { output, lse };
}

/** The oracle's fast f16 rounding, exported so tests can hold it to the exact conversion. */
export { r16 as roundF16Fast };
