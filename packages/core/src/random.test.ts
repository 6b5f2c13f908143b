import { describe, expect, it } from "vitest";
import { encode16, f32ToBf16Bits, f32ToF16Bits } from "./dtype.js";
import { gaussian, makeQKV, rng } from "./random.js";

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
