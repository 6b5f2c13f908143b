// V quantization for the int8 kernel's P·V in 16-bit fixed point: per (64-key block, channel),
// scale = max|V|/4095 (1 for an all-zero column), values nearest(V/scale) in [−4095, 4095].
// 13 bits keep the i32 sums of 64 products with P ∈ [0, 8191] below 2^31, and err less than f16 V does
// (half a step is 1.2e-4 of the column's max).
// Layout out, per 64-key block: i16 [32 key pairs][Dp channels][2 keys], so one v128 holds 4 channels × a key pair:
// the kernel broadcasts a query's P pair and i32x4.dot_i16x8_s adds 2 keys into 4 output channels.
// Keys past nk are zero; scales f32 [blocks][Dp].

import { KEY_BLOCK, V_LEVELS } from "./tiles";
import { nearestI32 } from "./round";

export function quantizeValues(v: usize, nk: i32, Dp: i32, out: usize, scales: usize): void {
  const blocks = (nk + KEY_BLOCK - 1) / KEY_BLOCK;
  const pairBytes = <usize>(Dp * 4);
  for (let b = 0; b < blocks; b++) {
    const j0 = b * KEY_BLOCK;
    const valid = min(KEY_BLOCK, nk - j0);
    const sc = scales + <usize>(b * Dp * 4);
    const blk = out + <usize>(b * KEY_BLOCK * Dp * 2);
    for (let d = 0; d < Dp; d += 4) {
      let amax = f32x4.splat(0);
      for (let j = 0; j < valid; j++) amax = f32x4.pmax(amax, f32x4.abs(v128.load(v + <usize>(((j0 + j) * Dp + d) * 4))));
      const zero = f32x4.eq(amax, f32x4.splat(0));
      const scale = v128.bitselect(f32x4.splat(1.0), f32x4.div(amax, f32x4.splat(V_LEVELS)), zero);
      v128.store(sc + <usize>(d * 4), scale);
      const inv = v128.bitselect(f32x4.splat(0), f32x4.div(f32x4.splat(V_LEVELS), amax), zero);
      for (let jp = 0; jp < KEY_BLOCK / 2; jp++) {
        const j = jp * 2;
        let a = i32x4.splat(0), c = i32x4.splat(0);
        if (j < valid) a = nearestI32(f32x4.mul(v128.load(v + <usize>(((j0 + j) * Dp + d) * 4)), inv));
        if (j + 1 < valid) c = nearestI32(f32x4.mul(v128.load(v + <usize>(((j0 + j + 1) * Dp + d) * 4)), inv));
        // [a0 a1 a2 a3 c0 c1 c2 c3] → [a0 c0 a1 c1 a2 c2 a3 c3]: channel-major, key pair adjacent.
        const n = i16x8.narrow_i32x4_s(a, c);
        v128.store(blk + <usize>(jp) * pairBytes + <usize>(d * 4), i16x8.shuffle(n, n, 0, 4, 1, 5, 2, 6, 3, 7));
      }
    }
  }
}
