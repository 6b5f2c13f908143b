import { describe, expect, it } from "vitest";
import { INT8_MAX, K_BLOCK, Q_BLOCK } from "./constants.js";
import { channelMean, quantizeRows, roundHalfAway } from "./quantize.js";
import { gaussian, rng } from "./random.js";

describe("quantization", () => {
  it("rounds half away from zero", () => {
    expect([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4999, -2.4999].map(roundHalfAway)).toEqual([-3, -2, -1, 1, 2, 3, 2, -2]);
  });

  it(`uses one scale per block, max|x|/${INT8_MAX}, and maps the block max to ±${INT8_MAX}`, () => {
    const g = gaussian(rng(1));
    const D = 16, rows = 300;
    const x = Float32Array.from({ length: rows * D }, () => g());
    const q = quantizeRows(x, 0, rows, D, Q_BLOCK, 0.5);
    expect(q.scales.length).toBe(Math.ceil(rows / Q_BLOCK));
    for (let b = 0; b < q.scales.length; b++) {
      let amax = 0;
      for (let r = b * Q_BLOCK; r < Math.min(rows, (b + 1) * Q_BLOCK); r++) {
        for (let d = 0; d < D; d++) amax = Math.max(amax, Math.abs(Math.fround(x[r * D + d] * 0.5)));
      }
      expect(q.scales[b]).toBeCloseTo(amax / INT8_MAX, 7);
      let vmax = 0;
      for (let r = b * Q_BLOCK; r < Math.min(rows, (b + 1) * Q_BLOCK); r++) {
        for (let d = 0; d < D; d++) vmax = Math.max(vmax, Math.abs(q.values[r * D + d]));
      }
      expect(vmax).toBe(INT8_MAX);
    }
    // Dequantized values are within half a step of the input.
    for (let r = 0; r < rows; r++) {
      for (let d = 0; d < D; d++) {
        const s = q.scales[Math.floor(r / Q_BLOCK)];
        expect(Math.abs(q.values[r * D + d] * s - x[r * D + d] * 0.5)).toBeLessThanOrEqual(s / 2 + 1e-6);
      }
    }
  });

  it("gives an all-zero block scale 1 and zeros, and keeps a partial tail block apart", () => {
    const D = 4, rows = K_BLOCK + 3;
    const x = new Float32Array(rows * D);
    x.fill(2, K_BLOCK * D); // only the 3-row tail is nonzero
    const q = quantizeRows(x, 0, rows, D, K_BLOCK);
    expect(Array.from(q.scales)).toEqual([1, Math.fround(2 / INT8_MAX)]);
    expect(q.values.slice(0, K_BLOCK * D).every((v) => v === 0)).toBe(true);
    expect(q.values.slice(K_BLOCK * D).every((v) => v === INT8_MAX)).toBe(true);
  });

  it("smooths by subtracting the channel mean first", () => {
    const D = 3, rows = 4;
    const x = Float32Array.from([1, 10, -5, 3, 10, -7, 5, 10, -9, 7, 10, -11]);
    const mean = channelMean(x, 0, rows, D);
    expect(Array.from(mean)).toEqual([4, 10, -8]);
    const q = quantizeRows(x, 0, rows, D, K_BLOCK, 1, mean);
    // Centred: [-3,0,3], [-1,0,1], [1,0,-1], [3,0,-3]; max 3 maps to 127.
    expect(Array.from(q.values)).toEqual([-127, 0, 127, -42, 0, 42, 42, 0, -42, 127, 0, -127]);
  });
});
