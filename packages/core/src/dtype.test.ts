import { describe, expect, it } from "vitest";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, roundF16 } from "./dtype.js";
import { roundF16Fast } from "./oracle-sage.js";
import { rng } from "./random.js";

describe("f16", () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff], // max
    [65519, 0x7bff], // just under the rounding boundary
    [65520, 0x7c00], // the tie rounds to even: infinity
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: even is 0
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal ulps: even is 2
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [1 + 2 ** -11, 0x3c00], // tie at 1: even keeps 1
    [1 + 3 * 2 ** -11, 0x3c02], // tie above 1 + ulp: rounds up to even
    [0.1, 0x2e66],
  ];
  it.each(cases)("encodes %d as 0x%s", (x, bits) => {
    expect(f32ToF16Bits(x)).toBe(bits);
  });
  it("encodes NaN as a NaN pattern and decodes it back to NaN", () => {
    const b = f32ToF16Bits(Number.NaN);
    expect(b & 0x7c00).toBe(0x7c00);
    expect(b & 0x3ff).not.toBe(0);
    expect(f16BitsToF32(b)).toBeNaN();
  });
  it("round-trips every finite f16 pattern", () => {
    for (let b = 0; b < 0x10000; b++) {
      if ((b & 0x7c00) === 0x7c00) continue;
      expect(f32ToF16Bits(f16BitsToF32(b))).toBe(b);
    }
  });
  it("the oracle's fast rounding agrees with the exact conversion", () => {
    const r = rng(3);
    for (let i = 0; i < 20000; i++) {
      const x = (r() - 0.5) * 2 ** (Math.floor(r() * 40) - 24);
      expect(roundF16Fast(x) + 0, `x = ${x}`).toBe(roundF16(x) + 0); // + 0: signed zeros compare equal
    }
    expect(roundF16Fast(70000)).toBe(Infinity);
  });
});

describe("bf16", () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000],
    [1, 0x3f80],
    [-1.5, 0xbfc0],
    [3.3895313892515355e38, 0x7f7f], // max bf16
    [Infinity, 0x7f80],
    [1 + 2 ** -8, 0x3f80], // tie: even keeps 1
    [1 + 3 * 2 ** -8, 0x3f82], // tie: rounds up to even
    [2 ** -133, 0x0001], // smallest subnormal
  ];
  it.each(cases)("encodes %d as 0x%s", (x, bits) => {
    expect(f32ToBf16Bits(x)).toBe(bits);
  });
  it("keeps NaN a NaN", () => {
    expect(bf16BitsToF32(f32ToBf16Bits(Number.NaN))).toBeNaN();
  });
  it("round-trips every finite bf16 pattern", () => {
    for (let b = 0; b < 0x10000; b++) {
      if ((b & 0x7f80) === 0x7f80) continue;
      expect(f32ToBf16Bits(bf16BitsToF32(b))).toBe(b);
    }
  });
});
