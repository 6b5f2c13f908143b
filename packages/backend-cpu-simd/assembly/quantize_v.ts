// Stage V conversion, here V quantization for the int8 kernel's P·V in 16-bit fixed point: per (64-key block, channel),
// scale = max|V|/4095 (1 for an all-zero column), values nearest(V/scale) in [−4095, 4095].
// 13 bits keep the i32 sums of 64 products with P ∈ [0, 8191] below 2^31, and err less than f16 V does
// (half a step is 1.2e-4 of the column's max).
// Layout out, per 64-key block: i16 [32 key pairs][Dp channels][2 keys], so one v128 holds 4 channels × a key pair:
// the kernel broadcasts a query's P pair and i32x4.dot_i16x8_s adds 2 keys into 4 output channels.
// Keys past nk are zero; scales f32 [blocks][Dp].
// Both passes walk V row by row (the column maxima kept in the scales row, then 1/scale in `inv`): streaming reads,
// twice as fast as walking it channel group by channel group (NOTES.md).

import { KEY_BLOCK, V_LEVELS } from "./tiles";
import { nearestI32 } from "./round";

/** `inv` is Dp f32 of scratch. */
export function quantizeValues(v: usize, nk: i32, Dp: i32, out: usize, scales: usize, inv: usize): void {
  const blocks = (nk + KEY_BLOCK - 1) / KEY_BLOCK;
  const pairBytes = <usize>(Dp * 4), rowBytes = <usize>(Dp * 4);
  for (let b = 0; b < blocks; b++) {
    const j0 = b * KEY_BLOCK;
    const valid = min(KEY_BLOCK, nk - j0);
    const sc = scales + <usize>(b * Dp * 4);
    const blk = out + <usize>(b * KEY_BLOCK * Dp * 2);
    const rows = v + <usize>(j0) * rowBytes;
    for (let d: usize = 0; d < rowBytes; d += 16) v128.store(sc + d, f32x4.abs(v128.load(rows + d))); // valid ≥ 1
    for (let j = 1; j < valid; j++) {
      const row = rows + <usize>j * rowBytes;
      for (let d: usize = 0; d < rowBytes; d += 16) v128.store(sc + d, f32x4.pmax(v128.load(sc + d), f32x4.abs(v128.load(row + d))));
    }
    for (let d: usize = 0; d < rowBytes; d += 16) {
      const amax = v128.load(sc + d);
      const zero = f32x4.eq(amax, f32x4.splat(0));
      v128.store(sc + d, v128.bitselect(f32x4.splat(1.0), f32x4.div(amax, f32x4.splat(V_LEVELS)), zero));
      v128.store(inv + d, v128.bitselect(f32x4.splat(0), f32x4.div(f32x4.splat(V_LEVELS), amax), zero));
    }
    for (let jp = 0; jp < KEY_BLOCK / 2; jp++) {
      const j = jp * 2;
      const dst = blk + <usize>(jp) * pairBytes;
      if (j + 1 < valid) {
        const r0 = rows + <usize>j * rowBytes, r1 = r0 + rowBytes;
        for (let d: usize = 0; d < rowBytes; d += 16) {
          const iv = v128.load(inv + d);
          const n = i16x8.narrow_i32x4_s(nearestI32(f32x4.mul(v128.load(r0 + d), iv)), nearestI32(f32x4.mul(v128.load(r1 + d), iv)));
          // [a0 a1 a2 a3 c0 c1 c2 c3] → [a0 c0 a1 c1 a2 c2 a3 c3]: channel-major, key pair adjacent.
          v128.store(dst + d, i16x8.shuffle(n, n, 0, 4, 1, 5, 2, 6, 3, 7));
        }
      } else if (j < valid) {
        const r0 = rows + <usize>j * rowBytes;
        for (let d: usize = 0; d < rowBytes; d += 16) {
          const n = i16x8.narrow_i32x4_s(nearestI32(f32x4.mul(v128.load(r0 + d), v128.load(inv + d))), i32x4.splat(0));
          v128.store(dst + d, i16x8.shuffle(n, n, 0, 4, 1, 5, 2, 6, 3, 7));
        }
      } else memory.fill(dst, 0, pairBytes);
    }
  }
}
