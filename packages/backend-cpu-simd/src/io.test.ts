// The fast 16-bit encoders give core's bit patterns for every kind of f32: normals, ties, subnormals, overflow.
import { f32ToBf16Bits, f32ToF16Bits } from "@sageattn/core";
import { describe, expect, it } from "vitest";
import { encodeBf16, encodeF16 } from "./io.js";

function samples(): Float32Array {
  const bits = new Uint32Array(200_000);
  let s = 12345;
  for (let i = 0; i < bits.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    bits[i] = s;
  }
  const f = new Float32Array(bits.buffer);
  const special = [
    0,
    -0,
    1,
    -1,
    65504,
    65519.996,
    65520,
    -65520,
    1e9,
    Infinity,
    -Infinity,
    6.103515625e-5,
    6.1e-5,
    5.96e-8,
    2.98e-8,
    2.99e-8,
    1e-10,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    1 + 2 ** -8,
    1 + 3 * 2 ** -8,
  ];
  const out = new Float32Array(f.length + special.length + 4000);
  out.set(f);
  out.set(special, f.length);
  // Values on f16 rounding ties and around the subnormal boundary.
  for (let i = 0; i < 4000; i++) out[f.length + special.length + i] = (i - 2000) * 2 ** -25 + (i % 2 ? 2 ** -14 : 0);
  return out.filter((x) => !Number.isNaN(x));
}

describe("16-bit encoders", () => {
  const x = samples();
  it("f16 matches f32ToF16Bits", () => {
    const got = encodeF16(x);
    for (let i = 0; i < x.length; i++) {
      if (got[i] !== f32ToF16Bits(x[i])) expect(got[i], `f16 of ${x[i]}`).toBe(f32ToF16Bits(x[i]));
    }
  });
  it("bf16 matches f32ToBf16Bits", () => {
    const got = encodeBf16(x);
    for (let i = 0; i < x.length; i++) {
      if (got[i] !== f32ToBf16Bits(x[i])) expect(got[i], `bf16 of ${x[i]}`).toBe(f32ToBf16Bits(x[i]));
    }
  });
});
