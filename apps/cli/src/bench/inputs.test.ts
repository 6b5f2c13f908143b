import { Effect } from "effect";
import { decode16, exactReference, resolveProblem } from "@sageattn/core";
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
