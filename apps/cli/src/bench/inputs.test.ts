import { Effect } from "effect";
import {
  decode16,
  exactReference,
  MASSIVE_CHANNELS,
  MASSIVE_SCALE,
  MASSIVE_SINK,
  resolveProblem,
  roundF16,
} from "@sageattn/core";
import { describe, expect, it } from "vitest";
import { checkSlice, exactOnSlice, f32Values, makeInputs, outputSlice, sliceHND, sliceNHD } from "./inputs.js";
import { toBSH } from "./peers/peer.js";
import type { BenchCase } from "./types.js";

describe("bench inputs and the accuracy slice", () => {
  it.each([false, true])("exact attention on the slice equals the full problem's, restricted (causal %s)", (causal) => {
    const c: BenchCase = { B: 2, H: 3, N: 200, D: 16, causal, dtype: "f32" };
    const inputs = makeInputs(c);
    const p = Effect.runSync(resolveProblem(inputs.q, inputs.k, inputs.v, { causal }));
    const full = exactReference(p, f32Values(inputs.q), f32Values(inputs.k), f32Values(inputs.v)).output;
    const s = checkSlice(c);
    expect(s).toEqual({ heads: 2, q0: 72, nq: 128 });
    const want = sliceHND(full, c, s.heads, s.q0, s.nq);
    const got = exactOnSlice(inputs);
    expect(got.length).toBe(want.length);
    let maxDiff = 0;
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    expect(maxDiff).toBeLessThan(1e-6);
  });

  it("f16 inputs: slices decode the bits; NHD and HND slices agree", () => {
    const c: BenchCase = { B: 1, H: 2, N: 40, D: 8, causal: false, dtype: "f16" };
    const inputs = makeInputs(c);
    expect(inputs.q.dtype).toBe("f16");
    const values = decode16(inputs.q.data as Uint16Array, "f16");
    expect(Array.from(sliceHND(inputs.q, c, 2, 10, 5))).toEqual(Array.from(sliceHND(values, c, 2, 10, 5)));
    expect(Array.from(sliceNHD(toBSH(values, 1, 2, 40, 8), c, 2, 10, 5))).toEqual(
      Array.from(sliceHND(values, c, 2, 10, 5)),
    );
    expect(Array.from(outputSlice(inputs.q, c))).toEqual(Array.from(sliceHND(values, c, 2, 0, 40)));
  });

  it("the same case twice reuses the tensors; a causal twin too", () => {
    const a = makeInputs({ B: 1, H: 1, N: 16, D: 8, causal: false, dtype: "f32" });
    const b = makeInputs({ B: 1, H: 1, N: 16, D: 8, causal: true, dtype: "f32" });
    expect(b.q).toBe(a.q);
  });
});

describe('bench inputs "massive"', () => {
  /** Every element of the massive tensors against the gaussian ones: scaled channels, the sink key, the rest equal. */
  function expectMassive(c: BenchCase, round: (x: number) => number) {
    const g = makeInputs(c, "gaussian");
    const [gq, gk, gv] = [f32Values(g.q), f32Values(g.k), f32Values(g.v)];
    const m = makeInputs(c, "massive");
    expect(m.q).not.toBe(g.q);
    expect(m.distribution).toBe("massive");
    const [mq, mk, mv] = [f32Values(m.q), f32Values(m.k), f32Values(m.v)];
    const scaled = MASSIVE_CHANNELS.filter((ch) => ch < c.D);
    for (const [name, got, base] of [["q", mq, gq], ["k", mk, gk]] as const) {
      for (let i = 0; i < base.length; i++) {
        const d = i % c.D, n = Math.floor(i / c.D) % c.N;
        const want = name === "k" && n === 0
          ? round(MASSIVE_SINK)
          : scaled.includes(d)
          ? round(base[i] * MASSIVE_SCALE)
          : base[i];
        if (got[i] !== want) {
          expect.fail(`${c.dtype} D=${c.D} ${name}[${i}] (token ${n}, channel ${d}): ${got[i]}, want ${want}`);
        }
      }
    }
    expect(Array.from(mv)).toEqual(Array.from(gv));
  }

  it("f16, D 64: channels 3, 17, 40 of Q and K are 20× the gaussian value rounded to f16; key 0 of each head is 30/8", () => {
    const c: BenchCase = { B: 2, H: 2, N: 24, D: 64, causal: false, dtype: "f16" };
    expect(MASSIVE_CHANNELS).toEqual([3, 17, 40]);
    expect([MASSIVE_SCALE, MASSIVE_SINK]).toEqual([20, 3.75]);
    expectMassive(c, roundF16);
    // One element by hand: Q[b 1, h 0, n 5, channel 17] (index ((1·2 + 0)·24 + 5)·64 + 17).
    const i = ((1 * 2 + 0) * 24 + 5) * 64 + 17;
    const g = f32Values(makeInputs(c, "gaussian").q)[i];
    const m = f32Values(makeInputs(c, "massive").q)[i];
    expect(g).not.toBe(0);
    expect(m).toBe(roundF16(20 * g));
    // Key 0 of batch 1, head 1, every channel.
    const k = f32Values(makeInputs(c, "massive").k);
    expect(Array.from(k.subarray((1 * 2 + 1) * 24 * 64, ((1 * 2 + 1) * 24 + 1) * 64))).toEqual(Array(64).fill(3.75));
  });

  it("f32, D 16: only channel 3 is below D, scaled in f32", () => {
    expectMassive({ B: 1, H: 3, N: 10, D: 16, causal: true, dtype: "f32" }, Math.fround);
  });

  it("the distribution is part of the cache key", () => {
    const c: BenchCase = { B: 1, H: 1, N: 16, D: 8, causal: false, dtype: "f16" };
    const before = Array.from(makeInputs(c, "gaussian").k.data);
    const massive = makeInputs(c, "massive");
    expect(makeInputs(c, "massive").k).toBe(massive.k);
    const after = makeInputs(c, "gaussian");
    expect(after.k).not.toBe(massive.k);
    expect(Array.from(after.k.data)).toEqual(before);
    expect(after.distribution).toBe("gaussian");
  });

  it("the exact slice is computed from the massive inputs", () => {
    const c: BenchCase = { B: 1, H: 2, N: 64, D: 64, causal: false, dtype: "f32" };
    const g = exactOnSlice(makeInputs(c, "gaussian"));
    const m = makeInputs(c, "massive");
    const p = Effect.runSync(resolveProblem(m.q, m.k, m.v, {}));
    const full = exactReference(p, f32Values(m.q), f32Values(m.k), f32Values(m.v)).output;
    const s = checkSlice(c);
    const want = sliceHND(full, c, s.heads, s.q0, s.nq);
    const got = exactOnSlice(m);
    let maxDiff = 0, fromGaussian = 0;
    for (let i = 0; i < got.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
      fromGaussian = Math.max(fromGaussian, Math.abs(got[i] - g[i]));
    }
    expect(maxDiff).toBeLessThan(1e-6);
    expect(fromGaussian).toBeGreaterThan(0.1);
  });
});
