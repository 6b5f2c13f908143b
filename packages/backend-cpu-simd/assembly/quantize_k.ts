// Stages K mean and K quantization (docs/DESIGN.md §2 steps 1–2) for one (sequence, kv head):
//   mean[d] = Σ_tokens K[t][d] / nk (f64 sum, f32 result), Kc = K − mean (f32),
//   per block of 64 keys: scale = max|Kc|/127 (1 for an all-zero block), values round(Kc/scale) half away from zero.
// Bit-exact with core's channelMean + quantizeRows.
// Layout out, per 64-key block: i16 [Dp/2][64 keys][2 channels], so that one v128 holds 4 keys × one channel pair:
// the attention kernel broadcasts a query's channel pair and i32x4.dot_i16x8_s gives 4 logits at once.
// Keys past nk in the tail block are zero.

import { INT8_MAX } from "./generated/constants";
import { KEY_BLOCK } from "./tiles";
import { packI16, roundHalfAway } from "./round";

/** Per-channel mean of nk rows (stride Dp) into mean[Dp] (f32), summing in f64 at sums[Dp]. */
export function channelMean(k: usize, nk: i32, Dp: i32, sums: usize, mean: usize): void {
  memory.fill(sums, 0, <usize>(Dp * 8));
  for (let t = 0; t < nk; t++) {
    const row = k + <usize>(t * Dp * 4);
    for (let d = 0; d < Dp; d += 4) {
      const x = v128.load(row + <usize>(d * 4));
      const s = sums + <usize>(d * 8);
      v128.store(s, f64x2.add(v128.load(s), f64x2.promote_low_f32x4(x)));
      v128.store(s, f64x2.add(v128.load(s, 16), f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 0, 1))), 16);
    }
  }
  const n = <f64>nk;
  for (let d = 0; d < Dp; d++) store<f32>(mean + <usize>(d * 4), nk > 0 ? <f32>(load<f64>(sums + <usize>(d * 8)) / n) : 0);
}

export function quantizeKeys(k: usize, nk: i32, Dp: i32, mean: usize, out: usize, scales: usize): void {
  const blocks = (nk + KEY_BLOCK - 1) / KEY_BLOCK;
  const pairStride = <usize>(KEY_BLOCK * 4); // bytes between channel pairs of one key
  for (let b = 0; b < blocks; b++) {
    const j0 = b * KEY_BLOCK;
    const valid = min(KEY_BLOCK, nk - j0);
    let amax = f32x4.splat(0);
    for (let j = 0; j < valid; j++) {
      const row = k + <usize>((j0 + j) * Dp * 4);
      for (let d = 0; d < Dp; d += 4)
        amax = f32x4.pmax(amax, f32x4.abs(f32x4.sub(v128.load(row + <usize>(d * 4)), v128.load(mean + <usize>(d * 4)))));
    }
    const m = max(max(f32x4.extract_lane(amax, 0), f32x4.extract_lane(amax, 1)), max(f32x4.extract_lane(amax, 2), f32x4.extract_lane(amax, 3)));
    const scale: f32 = m == 0 ? 1.0 : m / INT8_MAX;
    store<f32>(scales + <usize>(b * 4), scale);
    const scaleV = f32x4.splat(scale);
    const blk = out + <usize>(b * KEY_BLOCK * Dp * 2);
    for (let j = 0; j < KEY_BLOCK; j++) {
      let dst = blk + <usize>(j * 4);
      if (j >= valid) {
        for (let dp = 0; dp < Dp; dp += 2, dst += pairStride) store<i32>(dst, 0);
        continue;
      }
      const row = k + <usize>((j0 + j) * Dp * 4);
      for (let d = 0; d < Dp; d += 8) {
        const a = roundHalfAway(f32x4.div(f32x4.sub(v128.load(row + <usize>(d * 4)), v128.load(mean + <usize>(d * 4))), scaleV));
        const c = roundHalfAway(f32x4.div(f32x4.sub(v128.load(row + <usize>(d * 4), 16), v128.load(mean + <usize>(d * 4), 16)), scaleV));
        const v = packI16(a, c); // channels d..d+7 = pairs d/2 .. d/2+3 as i32 lanes
        v128.store32_lane(dst, v, 0);
        v128.store32_lane(dst + pairStride, v, 1);
        v128.store32_lane(dst + 2 * pairStride, v, 2);
        v128.store32_lane(dst + 3 * pairStride, v, 3);
        dst += 4 * pairStride;
      }
    }
  }
}
