// The exact kernel's K layout: per 64-key block, f32 [Dp channels][64 keys], so one v128 holds 4 keys of one channel
// and Q·Kᵀ is a broadcast of one query element times 4 keys. Keys past nk are zero.

import { KEY_BLOCK } from "./tiles";

export function transposeKeys(k: usize, nk: i32, Dp: i32, out: usize): void {
  const blocks = (nk + KEY_BLOCK - 1) / KEY_BLOCK;
  for (let b = 0; b < blocks; b++) {
    const j0 = b * KEY_BLOCK;
    const valid = min(KEY_BLOCK, nk - j0);
    const blk = out + <usize>(b * KEY_BLOCK * Dp * 4);
    for (let j = 0; j < KEY_BLOCK; j++) {
      const row = k + <usize>((j0 + j) * Dp * 4);
      for (let d = 0; d < Dp; d++) store<f32>(blk + <usize>((d * KEY_BLOCK + j) * 4), j < valid ? load<f32>(row + <usize>(d * 4)) : 0);
    }
  }
}
