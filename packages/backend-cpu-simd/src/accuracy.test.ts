// Accuracy of both kernels against core's oracles, on the distributions of docs/DESIGN.md §2 and the shapes the kernels
// treat specially (tails of K blocks and Q blocks, GQA, Nq ≠ Nk, causal, padded head dims).
// The int8 kernel sums P·V exactly in int32 and then in f32, so core's checkOutput holds it to the sage oracle with f32
// accumulation (its capabilities say fixed16), more tightly than the conformance suite does.
import { accuracy, type AttentionOptions, type Distribution, exactReference, toCanonicalF32 } from "@sageattn/core";
import { checkOutput } from "@sageattn/core/conformance/check";
import { Effect } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { makeCpuSimd } from "./backend.js";
import { inputs } from "./test-inputs.js";

const backend = await Effect.runPromise(makeCpuSimd({ threads: 1 }));
afterAll(() => Effect.runPromise(backend.dispose));

type Shape = { B: number; Hq: number; Hkv: number; Nq: number; Nk: number; D: number };
const cases: [Shape, Distribution, AttentionOptions][] = [
  [{ B: 1, Hq: 2, Hkv: 2, Nq: 256, Nk: 256, D: 64 }, "gaussian", {}],
  [{ B: 1, Hq: 2, Hkv: 2, Nq: 256, Nk: 256, D: 64 }, "k-bias", {}],
  [{ B: 1, Hq: 2, Hkv: 2, Nq: 256, Nk: 256, D: 64 }, "heavy-tail", {}],
  [{ B: 1, Hq: 2, Hkv: 2, Nq: 256, Nk: 256, D: 64 }, "sink", { returnLse: true }],
  [{ B: 1, Hq: 2, Hkv: 2, Nq: 256, Nk: 256, D: 64 }, "constant", {}],
  [{ B: 2, Hq: 4, Hkv: 1, Nq: 131, Nk: 300, D: 128 }, "k-bias", { causal: true, returnLse: true }],
  [{ B: 1, Hq: 3, Hkv: 3, Nq: 200, Nk: 65, D: 20 }, "gaussian", { causal: true }],
];

const name = (s: Shape, dist: string, o: AttentionOptions) =>
  `B${s.B} Hq${s.Hq} Hkv${s.Hkv} Nq${s.Nq} Nk${s.Nk} D${s.D} ${dist}${
    Object.entries(o).map(([k, v]) => ` ${k}=${v}`).join("")
  }`;

/**
 * Tighter than the suite's `BOUNDS.sageRelL1`: the kernel's Q and K quantizers are bit-exact with core's and its P·V
 * sums are exact in int32, so only the fixed-point rounding of P and V separates it from the f32 oracle (about 3e-4).
 */
const VS_F32_ORACLE = 1e-3;

describe("int8 kernel vs the sage oracle (f32 P·V accumulation) and exact attention", () => {
  for (const [s, dist, o] of cases) {
    it(name(s, dist, o), async () => {
      const x = inputs(s, dist, o);
      const got = await Effect.runPromise(backend.attention(x.p, x.q, x.k, x.v));
      const r = checkOutput({
        problem: x.p,
        q: x.raw.q,
        k: x.raw.k,
        v: x.raw.v,
        output: toCanonicalF32(got.output as never),
        lse: got.lse,
        capabilities: backend.capabilities,
        sageRelL1: VS_F32_ORACLE,
        exact: dist === "heavy-tail" ? "heavy-tail" : "normal",
      });
      expect(r.pvOracle).toBe("f32");
      expect(r.failures, `rel-L1 vs sage ${r.vsSage.relL1}, vs exact ${r.vsExact?.relL1}`).toEqual([]);
      if (o.returnLse) expect(r.lseError, "largest relative LSE error").toBeLessThanOrEqual(VS_F32_ORACLE);
    });
  }
});

describe("exact f32 kernel vs the float64 exact oracle", () => {
  for (const [s, dist, o] of cases) {
    it(name(s, dist, o), async () => {
      const x = inputs(s, dist, o);
      const got = await Effect.runPromise(backend.exactAttention!(x.p, x.q, x.k, x.v));
      const exact = exactReference(x.p, x.raw.q, x.raw.k, x.raw.v);
      const a = accuracy(toCanonicalF32(got.output as never), exact.output);
      expect(a.nonFinite).toBe(0);
      expect(a.relL1, "rel-L1 vs exact").toBeLessThanOrEqual(2e-6);
      if (o.returnLse) {
        const lse = got.lse!;
        for (let r = 0; r < lse.length; r++) {
          if (exact.lse[r] === -Infinity) expect(lse[r]).toBe(-Infinity);
          else {expect(Math.abs(lse[r] - exact.lse[r]), `lse row ${r}`).toBeLessThanOrEqual(
              1e-5 * Math.max(1, Math.abs(exact.lse[r])),
            );}
        }
      }
    });
  }
});
