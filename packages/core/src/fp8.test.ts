import { describe, expect, it } from "vitest";
import { e4m3FromBits, roundE4m3 } from "./fp8.js";

/** Every finite non-negative e4m3 value, ascending (codes 0x00..0x7e). */
const values = Array.from({ length: 0x7f }, (_, b) => e4m3FromBits(b));

describe("roundE4m3", () => {
  it("decodes the format's landmarks", () => {
    expect(e4m3FromBits(0x01)).toBe(2 ** -9); // smallest subnormal
    expect(e4m3FromBits(0x07)).toBe(7 * 2 ** -9); // largest subnormal
    expect(e4m3FromBits(0x08)).toBe(2 ** -6); // smallest normal
    expect(e4m3FromBits(0x38)).toBe(1);
    expect(e4m3FromBits(0x7e)).toBe(448);
    expect(e4m3FromBits(0x7f)).toBeNaN();
    expect(e4m3FromBits(0xfe)).toBe(-448);
  });

  it("rounds known values", () => {
    const cases: [number, number][] = [
      [0, 0],
      [2 ** -9, 2 ** -9],
      [2 ** -10, 0], // tie between 0 and 2^-9: even is 0
      [1.5 * 2 ** -10, 2 ** -9],
      [3 * 2 ** -10, 2 * 2 ** -9], // tie between 1·2^-9 and 2·2^-9: even is 2
      [5 * 2 ** -10, 2 * 2 ** -9], // tie between 2·2^-9 and 3·2^-9: even is 2
      [15 * 2 ** -10, 2 ** -6], // tie between the largest subnormal and the smallest normal: even is 2^-6 (0x08)
      [1.0625, 1], // tie between 1 and 1.125
      [1.1875, 1.25], // tie between 1.125 and 1.25
      [0.3, 0.3125],
      [-0.3, -0.3125],
      [240, 240],
      [424, 416], // nearer 416 (0x7d) than 448 (0x7e)
      [432, 448], // tie between 416 (0x7d) and 448 (0x7e): even is 448
      [448, 448],
      [449, 448], // saturates (no infinity in e4m3fn)
      [464, 448], // the would-be tie with 480 saturates too
      [1e9, 448],
      [-1e9, -448],
    ];
    for (const [x, want] of cases) expect(roundE4m3(x), `round(${x})`).toBe(want);
    expect(Object.is(roundE4m3(-0), -0)).toBe(true);
    expect(Object.is(roundE4m3(-(2 ** -11)), -0)).toBe(true);
    expect(roundE4m3(NaN)).toBeNaN();
  });

  it("keeps every e4m3 value and rounds every midpoint to the even code", () => {
    for (let b = 0; b < values.length; b++) {
      expect(roundE4m3(values[b]), `code 0x${b.toString(16)}`).toBe(values[b]);
      expect(roundE4m3(-values[b]), `code 0x${(b | 0x80).toString(16)}`).toBe(-values[b]);
      if (b + 1 < values.length) {
        const mid = (values[b] + values[b + 1]) / 2;
        const even = b % 2 === 0 ? values[b] : values[b + 1];
        expect(roundE4m3(mid), `midpoint of 0x${b.toString(16)}, 0x${(b + 1).toString(16)}`).toBe(even);
        // Just off the midpoint, the nearer neighbour wins.
        expect(roundE4m3(mid * (1 - 2 ** -40))).toBe(values[b]);
        expect(roundE4m3(mid * (1 + 2 ** -40))).toBe(values[b + 1]);
      }
    }
  });
});
