// Hiding keys in one row of 64 base-2 logits: keys at or past the row's limit (causality, the end of the sequence)
// and keys a mask hides (boolean: zero hides; additive: natural-log bias, scaled by log2 e, −∞ hides).

import { LOG2E } from "./generated/constants";
import { KEY_BLOCK } from "./tiles";

const LANES = i32x4(0, 1, 2, 3);

/** `row` is the mask element of key 0 for this query (0: no mask); kind 1 boolean u8, 2 additive f32. */
export function hideKeys(s: usize, j0: i32, limit: i32, row: usize, kind: i32): void {
  const lim = limit - j0;
  if (lim < KEY_BLOCK) {
    const limV = i32x4.splat(lim);
    const minusInf = f32x4.splat(-Infinity);
    for (let j = 0; j < KEY_BLOCK; j += 4) {
      const keep = i32x4.lt_s(i32x4.add(LANES, i32x4.splat(j)), limV);
      const p = s + <usize>(j * 4);
      v128.store(p, v128.bitselect(v128.load(p), minusInf, keep));
    }
  }
  if (kind == 0) return;
  const n = min(lim, KEY_BLOCK);
  if (kind == 1) {
    for (let j = 0; j < n; j++) if (load<u8>(row + <usize>(j0 + j)) == 0) store<f32>(s + <usize>(j * 4), -Infinity);
  } else {
    for (let j = 0; j < n; j++) {
      const p = s + <usize>(j * 4);
      store<f32>(p, load<f32>(p) + load<f32>(row + <usize>((j0 + j) * 4)) * LOG2E);
    }
  }
}
