// The relaxed-SIMD build computes what the SIMD128 build does: Q·Kᵀ and P·V are exact integer sums in both; only
// the fused multiply-adds (exp2 polynomial, logit scaling, f32 accumulation) may round differently in the last bit.
// A runtime without relaxed SIMD (Node 20) gets the SIMD128 build.
import { accuracy, toCanonicalF32 } from "@sageattn/core";
import { Effect } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { makeCpuSimd } from "./backend.js";
import { probeFeatures } from "./features.js";
import { inputs } from "./test-inputs.js";

const f = probeFeatures();
const plain = await Effect.runPromise(makeCpuSimd({ threads: 1, build: "simd128" }));
const auto = await Effect.runPromise(makeCpuSimd({ threads: 1 }));
afterAll(() => Effect.runPromise(Effect.all([plain.dispose, auto.dispose])));

describe("module choice", () => {
  it(`picks ${f.relaxedSimd ? "relaxed-simd" : "simd128"} here (relaxed SIMD ${f.relaxedSimd ? "validates" : "does not validate"})`, () => {
    expect(auto.details.build).toBe(f.relaxedSimd ? "relaxed-simd" : "simd128");
  });
  it.runIf(!f.relaxedSimd)("refuses a forced relaxed build with FeatureMissing", async () => {
    const exit = await Effect.runPromiseExit(makeCpuSimd({ threads: 1, build: "relaxed-simd" }));
    expect(exit._tag).toBe("Failure");
    if (exit._tag === "Failure" && exit.cause._tag === "Fail") expect(exit.cause.error.reason).toBe("FeatureMissing");
  });
});

describe.skipIf(!f.relaxedSimd)(
  "relaxed-simd build vs simd128 build (skipped: this runtime has no relaxed SIMD)",
  () => {
    for (const o of [{}, { causal: true, returnLse: true }]) {
      for (const kernel of ["attention", "exactAttention"] as const) {
        it(`${kernel} ${JSON.stringify(o)}: outputs agree to the last bits`, async () => {
          const x = inputs({ B: 1, Hq: 4, Hkv: 2, Nq: 200, Nk: 190, D: 72 }, "k-bias", o, 3);
          const a = await Effect.runPromise(plain[kernel]!(x.p, x.q, x.k, x.v));
          const b = await Effect.runPromise(auto[kernel]!(x.p, x.q, x.k, x.v));
          const d = accuracy(toCanonicalF32(b.output as never), toCanonicalF32(a.output as never));
          expect(d.nonFinite).toBe(0);
          // int8: a P that lands on a rounding boundary may move by one 1/8191 step; exact: FMA vs mul+add.
          expect(d.relL1, "rel-L1 relaxed vs plain").toBeLessThanOrEqual(kernel === "attention" ? 2e-5 : 1e-6);
        });
      }
    }
  },
);
