// Query tile quantization (docs/DESIGN.md §2 step 2): x = Q·fold in f32 (fold = smScale·log2 e, so logits come out in
// base 2), one scale per 128-token block = max|x|/127 (1 for an all-zero block), values round(x/scale) half away from
// zero.
// Bit-exact with core's quantizeRows: every step is the same f32 operation.
// A tile quantizes only its own rows, but each row's scale comes from its whole 128-token block.
// Layout out: i16 [TILE_ROWS][Dp] (int8 values widened for i32x4.dot_i16x8_s), rows past `rows` up to a multiple of 4
// zeroed; scales f32 [TILE_ROWS].

import { INT8_MAX } from "./generated/constants";
import { Q_BLOCK } from "./tiles";
import { packI16, roundHalfAway } from "./round";

/** max|q·fold| over rows [r0, r1) of f32 rows with stride Dp. */
function blockAbsMax(q: usize, r0: i32, r1: i32, Dp: i32, fold: v128): f32 {
  let m0 = f32x4.splat(0), m1 = f32x4.splat(0);
  for (let r = r0; r < r1; r++) {
    let p = q + <usize>(r * Dp * 4);
    for (let d = 0; d < Dp; d += 8, p += 32) {
      m0 = f32x4.pmax(m0, f32x4.abs(f32x4.mul(v128.load(p), fold)));
      m1 = f32x4.pmax(m1, f32x4.abs(f32x4.mul(v128.load(p, 16), fold)));
    }
  }
  const m = f32x4.pmax(m0, m1);
  return max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
}

export function quantizeQueryTile(q: usize, nq: i32, i0: i32, rows: i32, Dp: i32, fold: f32, out: usize, scales: usize): void {
  const foldV = f32x4.splat(fold);
  let r = 0;
  while (r < rows) {
    const i = i0 + r;
    const b0 = (i / Q_BLOCK) * Q_BLOCK;
    const b1 = min(nq, b0 + Q_BLOCK);
    const amax = blockAbsMax(q, b0, b1, Dp, foldV);
    const scale: f32 = amax == 0 ? 1.0 : amax / INT8_MAX;
    const scaleV = f32x4.splat(scale);
    const end = min(rows, b1 - i0);
    for (; r < end; r++) {
      store<f32>(scales + <usize>(r * 4), scale);
      let src = q + <usize>((i0 + r) * Dp * 4);
      let dst = out + <usize>(r * Dp * 2);
      for (let d = 0; d < Dp; d += 8, src += 32, dst += 16) {
        const a = roundHalfAway(f32x4.div(f32x4.mul(v128.load(src), foldV), scaleV));
        const b = roundHalfAway(f32x4.div(f32x4.mul(v128.load(src, 16), foldV), scaleV));
        v128.store(dst, packI16(a, b));
      }
    }
  }
  const padded = (rows + 3) & ~3;
  for (; r < padded; r++) {
    store<f32>(scales + <usize>(r * 4), 1.0);
    memory.fill(out + <usize>(r * Dp * 2), 0, <usize>(Dp * 2));
  }
}

/** The exact kernel's query tile: f32 rows Q·fold, rows past `rows` up to a multiple of 4 zeroed. */
export function scaleQueryTile(q: usize, i0: i32, rows: i32, Dp: i32, fold: f32, out: usize): void {
  const foldV = f32x4.splat(fold);
  for (let r = 0; r < rows; r++) {
    let src = q + <usize>((i0 + r) * Dp * 4);
    let dst = out + <usize>(r * Dp * 4);
    for (let d = 0; d < Dp; d += 4, src += 16, dst += 16) v128.store(dst, f32x4.mul(v128.load(src), foldV));
  }
  const padded = (rows + 3) & ~3;
  if (padded > rows) memory.fill(out + <usize>(rows * Dp * 4), 0, <usize>((padded - rows) * Dp * 4));
}
