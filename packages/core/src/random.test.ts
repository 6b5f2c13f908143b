import { describe, expect, it } from "vitest";
import { encode16, f32ToBf16Bits, f32ToF16Bits } from "./dtype.js";
import { gaussian, makeQKV, normalStream, rng } from "./random.js";

describe("makeQKV", () => {
  it("fills Gaussian tensors with exactly the values gaussian(rng(seed)) draws one at a time", () => {
    // Odd lengths, so a Box–Muller pair straddles q/k and k/v.
    const s = { B: 1, Hq: 3, Hkv: 1, Nq: 5, Nk: 7, D: 3 };
    const { q, k, v } = makeQKV(s, "gaussian", 19);
    const g = gaussian(rng(19));
    const want = Float32Array.from({ length: q.length + k.length + v.length }, () => g());
    expect([...q, ...k, ...v]).toEqual([...want]);
  });

  it("keeps one stream for the k-bias draws after the fill", () => {
    const s = { B: 1, Hq: 1, Hkv: 1, Nq: 2, Nk: 3, D: 3 };
    const { k } = makeQKV(s, "k-bias", 5);
    const g = gaussian(rng(5));
    const base = Float32Array.from({ length: 6 + 9 + 9 }, () => g());
    const bias = Array.from({ length: 3 }, () => 4 * g());
    const want = Float32Array.from({ length: 9 }, (_, i) => base[6 + i] + bias[i % 3]);
    expect([...k]).toEqual([...want]);
  });
});

describe("normalStream", () => {
  it("gives the same sequence for a seed however the calls cut it (odd lengths included)", () => {
    const whole = new Float32Array(41);
    normalStream(8)(whole);
    const draw = normalStream(8),
      parts = [new Float32Array(10), new Float32Array(7), new Float32Array(0), new Float32Array(24)];
    for (const x of parts) draw(x);
    expect(parts.flatMap((x) => [...x])).toEqual([...whole]);
    const other = new Float32Array(41);
    normalStream(9)(other);
    expect([...other]).not.toEqual([...whole]);
  });

  it("draws a standard normal: moments and the CDF at ±1, ±2 within a few standard errors of 2^20 samples", () => {
    const x = new Float32Array(1 << 20);
    normalStream(1)(x);
    let m1 = 0, m2 = 0, m4 = 0;
    const below = [-2, -1, 0, 1, 2].map(() => 0);
    for (const v of x) {
      m1 += v;
      m2 += v * v;
      m4 += v ** 4;
      [-2, -1, 0, 1, 2].forEach((t, i) => (below[i] += v < t ? 1 : 0));
    }
    const n = x.length;
    expect(Math.abs(m1 / n)).toBeLessThan(5e-3); // standard error 1e-3
    expect(Math.abs(m2 / n - 1)).toBeLessThan(7e-3); // 1.4e-3
    expect(Math.abs(m4 / n - 3)).toBeLessThan(0.05); // 1e-2
    const phi = [0.02275, 0.158655, 0.5, 0.841345, 0.97725];
    below.forEach((b, i) => expect(Math.abs(b / n - phi[i])).toBeLessThan(2.5e-3)); // ≤ 5e-4
  });
});

describe("encode16", () => {
  it("gives a Float32Array, a view into one and a plain array the same bits as the scalar encoders", () => {
    const r = rng(3);
    const x = Float32Array.from({ length: 4099 }, (_, i) => (r() - 0.5) * 2 ** ((i % 70) - 35));
    x.set([NaN, Infinity, -Infinity, -0, 65520, 2 ** -25, 3 * 2 ** -25], 0);
    for (const [dtype, one] of [["f16", f32ToF16Bits], ["bf16", f32ToBf16Bits]] as const) {
      const want = Uint16Array.from(x, one);
      expect(encode16(x, dtype)).toEqual(want);
      expect(encode16(x.subarray(5), dtype)).toEqual(want.subarray(5));
      expect(encode16(Array.from(x), dtype)).toEqual(want);
    }
  });
});
