import { accuracy, exactReference, hostTensor, makeQKV, resolveProblem, sageReference } from "@sageattn/core";
import { Effect } from "effect";
import { describe, expect, test } from "vitest";
import { exactAttentionMap, type MapSizes, sageAttentionMap } from "../src/attention-map.js";
import type { Grid } from "../src/heatmap.js";

/** P·V for one head in float64 (hidden cells, NaN, contribute nothing). */
function applyToV(p: Grid, v: Float32Array, vBase: number, D: number): Float64Array {
  const out = new Float64Array(p.rows * D);
  for (let i = 0; i < p.rows; i++) {
    for (let j = 0; j < p.cols; j++) {
      const w = p.values[i * p.cols + j];
      if (Number.isNaN(w)) continue;
      for (let d = 0; d < D; d++) out[i * D + d] += w * v[vBase + j * D + d];
    }
  }
  return out;
}

const cases = [
  { Hq: 2, Hkv: 1, Nq: 150, Nk: 150, D: 64, causal: false },
  { Hq: 2, Hkv: 2, Nq: 70, Nk: 200, D: 32, causal: true },
];

describe("the page's attention maps reproduce core's oracles", () => {
  for (const c of cases) {
    const name = `Hq=${c.Hq} Hkv=${c.Hkv} Nq=${c.Nq} Nk=${c.Nk} D=${c.D}${c.causal ? " causal" : ""}, k-bias`;
    test(name, () => {
      const { q, k, v } = makeQKV({ B: 1, ...c }, "k-bias", 3);
      const t = (x: Float32Array, H: number, N: number) => hostTensor(x, [1, H, N, c.D]);
      const problem = Effect.runSync(
        resolveProblem(t(q, c.Hq, c.Nq), t(k, c.Hkv, c.Nk), t(v, c.Hkv, c.Nk), {
          causal: c.causal,
          pvAccumulation: "f32",
        }),
      );
      const exact = exactReference(problem, q, k, v).output;
      const sage = sageReference(problem, q, k, v).output;
      const sizes: MapSizes = { ...c, smScale: problem.smScale };
      for (let h = 0; h < c.Hq; h++) {
        const rows = c.Nq * c.D;
        const vBase = Math.floor(h / (c.Hq / c.Hkv)) * c.Nk * c.D;
        const exactHead = exact.subarray(h * rows, (h + 1) * rows);
        const sageHead = sage.subarray(h * rows, (h + 1) * rows);
        // The exact map times V is exact attention, to rounding.
        const fromExactMap = accuracy(applyToV(exactAttentionMap(sizes, q, k, h), v, vBase, c.D), exactHead);
        expect(fromExactMap.maxAbs, `${name} head ${h}: exact map · V vs exact oracle`).toBeLessThan(1e-9);
        // The INT8 map times V is the sage oracle up to its f16 rounding of P and V, and much nearer to it than exact is.
        const fromSageMap = accuracy(applyToV(sageAttentionMap(sizes, q, k, h), v, vBase, c.D), sageHead);
        const exactVsSage = accuracy(exactHead, sageHead);
        expect(fromSageMap.cosine, `${name} head ${h}: sage map · V vs sage oracle`).toBeGreaterThan(0.9999995);
        expect(fromSageMap.relL1, `${name} head ${h}: sage map · V vs sage oracle, against exact's distance`)
          .toBeLessThan(0.05 * exactVsSage.relL1);
      }
    });
  }
});
