// Threads change who runs a tile, never what it computes: 2 threads and 1 thread give identical bits.
import { type AttentionOptions, toCanonicalF32 } from "@sageattn/core";
import { Effect } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { makeCpuSimd } from "./backend.js";
import { firstDifference, inputs } from "./test-inputs.js";

const one = await Effect.runPromise(makeCpuSimd({ threads: 1 }));
const two = await Effect.runPromise(makeCpuSimd({ threads: 2 }));
afterAll(() => Effect.runPromise(Effect.all([one.dispose, two.dispose])));

const shape = { B: 2, Hq: 4, Hkv: 2, Nq: 300, Nk: 260, D: 64 };
const options: [string, AttentionOptions][] = [
  ["plain", {}],
  ["causal + LSE", { causal: true, returnLse: true }],
  ["varlen", { varlen: { cuSeqlensQ: Int32Array.from([0, 100, 300]), cuSeqlensK: Int32Array.from([0, 130, 260]) } }],
];

describe("threads vs one thread", () => {
  it("this runtime starts the workers", () => {
    expect(two.threads, String(two.details.threads)).toBe(2);
  });
  for (const [label, o] of options) {
    for (const kernel of ["attention", "exactAttention"] as const) {
      it(`${kernel}, ${label}: identical outputs and LSE`, async () => {
        const s = o.varlen ? { ...shape, B: 1 } : shape;
        const x = inputs(s, "k-bias", o, 11);
        const a = await Effect.runPromise(one[kernel]!(x.p, x.q, x.k, x.v));
        const b = await Effect.runPromise(two[kernel]!(x.p, x.q, x.k, x.v));
        expect(
          firstDifference(toCanonicalF32(a.output as never), toCanonicalF32(b.output as never)),
          "first differing output element",
        ).toBe(-1);
        if (o.returnLse) expect(firstDifference(a.lse!, b.lse!), "first differing LSE").toBe(-1);
      });
    }
  }
});
