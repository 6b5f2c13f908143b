import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { BOUNDS, INT8_MAX, LOG2E } from "./constants.js";
import { accuracy } from "./metrics.js";
import { exactReference } from "./oracle-exact.js";
import { sageReference } from "./oracle-sage.js";
import { type AttentionOptions, resolveProblem } from "./problem.js";
import { makeQKV } from "./random.js";
import { hostTensor } from "./tensor.js";

/** An independent naive exact attention: full score matrix, plain softmax, no shared helpers. */
function naiveExact(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  H: number,
  N: number,
  D: number,
  causal: boolean,
): Float64Array {
  const out = new Float64Array(H * N * D);
  const scale = 1 / Math.sqrt(D);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      const s: number[] = [];
      for (let j = 0; j < N; j++) {
        if (causal && j > i) {
          s.push(-Infinity);
          continue;
        }
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(h * N + i) * D + d] * k[(h * N + j) * D + d];
        s.push(dot * scale);
      }
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < N; j++) {
        for (let d = 0; d < D; d++) out[(h * N + i) * D + d] += (e[j] / z) * v[(h * N + j) * D + d];
      }
    }
  }
  return out;
}

/** An independent naive SageAttention: smoothing, per-block INT8, dequantized full-row softmax in base 2, f32 P·V. */
function naiveSage(q: Float32Array, k: Float32Array, v: Float32Array, H: number, N: number, D: number): Float64Array {
  const out = new Float64Array(H * N * D);
  const fold = (1 / Math.sqrt(D)) * LOG2E;
  const quant = (x: number[][], block: number) => {
    const vals: number[][] = [], scales: number[] = [];
    for (let b0 = 0; b0 < x.length; b0 += block) {
      const rows = x.slice(b0, b0 + block);
      const amax = Math.max(...rows.flat().map(Math.abs));
      const s = amax === 0 ? 1 : amax / INT8_MAX;
      for (const r of rows) {
        vals.push(r.map((e) => Math.sign(e) * Math.floor(Math.abs(e) / s + 0.5)));
        scales.push(s);
      }
    }
    return { vals, scales };
  };
  for (let h = 0; h < H; h++) {
    const rowsOf = (a: Float32Array) =>
      Array.from({ length: N }, (_, i) => Array.from(a.subarray((h * N + i) * D, (h * N + i + 1) * D)));
    const K = rowsOf(k);
    const mean = Array.from({ length: D }, (_, d) => K.reduce((acc, r) => acc + r[d], 0) / N);
    const kq = quant(K.map((r) => r.map((e, d) => e - mean[d])), 64);
    const qq = quant(rowsOf(q).map((r) => r.map((e) => e * fold)), 128);
    for (let i = 0; i < N; i++) {
      const s = kq.vals.map((kr, j) =>
        kr.reduce((acc, e, d) => acc + e * qq.vals[i][d], 0) * qq.scales[i] * kq.scales[j]
      );
      const m = Math.max(...s);
      const p = s.map((x) => 2 ** (x - m));
      const z = p.reduce((a, b) => a + b, 0);
      for (let j = 0; j < N; j++) {
        for (let d = 0; d < D; d++) out[(h * N + i) * D + d] += (p[j] / z) * v[(h * N + j) * D + d];
      }
    }
  }
  return out;
}

function problemFor(H: number, N: number, D: number, options: AttentionOptions = {}) {
  const t = hostTensor(new Float32Array(H * N * D), [1, H, N, D]);
  return Effect.runSync(resolveProblem(t, t, t, options));
}

describe("oracles", () => {
  it("exact oracle matches a naive implementation (causal and not)", () => {
    const s = { B: 1, Hq: 2, Hkv: 2, Nq: 70, Nk: 70, D: 24 };
    const { q, k, v } = makeQKV(s, "gaussian", 5);
    for (const causal of [false, true]) {
      const ref = exactReference(problemFor(2, 70, 24, { causal }), q, k, v);
      const naive = naiveExact(q, k, v, 2, 70, 24, causal);
      expect(accuracy(ref.output, naive).maxAbs).toBeLessThan(1e-12);
    }
  });

  it("sage oracle matches a naive SageAttention far more closely than either matches exact", () => {
    const s = { B: 1, Hq: 2, Hkv: 2, Nq: 200, Nk: 200, D: 32 };
    const { q, k, v } = makeQKV(s, "k-bias", 6);
    const p = problemFor(2, 200, 32, { pvAccumulation: "f32" });
    const sage = sageReference(p, q, k, v);
    const naive = naiveSage(q, k, v, 2, 200, 32);
    const exact = exactReference(p, q, k, v);
    const vsNaive = accuracy(sage.output, naive).relL1;
    const vsExact = accuracy(sage.output, exact.output).relL1;
    // The only differences left are f16 rounding of P and V: an order of magnitude below the INT8 error.
    expect(vsNaive).toBeLessThan(1.5e-3);
    expect(vsNaive * 5).toBeLessThan(vsExact);
  });

  describe.each([64, 128])(
    "the paper's case, D=%i: Gaussian Q/K/V plus per-channel K bias N(0, 4²), B=1 H=4 N=1024",
    (D) => {
      const s = { B: 1, Hq: 4, Hkv: 4, Nq: 1024, Nk: 1024, D };
      const { q, k, v } = makeQKV(s, "k-bias", 11);
      const exact = exactReference(problemFor(4, 1024, D), q, k, v);
      it(`with K smoothing: cos ≥ ${BOUNDS.exact.minCosine} and rel-L1 ≤ ${BOUNDS.exact.maxRelL1} vs exact`, () => {
        const a = accuracy(sageReference(problemFor(4, 1024, D), q, k, v).output, exact.output);
        expect(a.cosine).toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
        expect(a.relL1).toBeLessThanOrEqual(BOUNDS.exact.maxRelL1);
      }, 60_000);
      it("without smoothing: visibly worse, failing the bound", () => {
        const on = accuracy(sageReference(problemFor(4, 1024, D), q, k, v).output, exact.output);
        const off = accuracy(sageReference(problemFor(4, 1024, D, { smoothK: false }), q, k, v).output, exact.output);
        expect(off.relL1).toBeGreaterThan(BOUNDS.exact.maxRelL1);
        expect(off.relL1).toBeGreaterThan(2 * on.relL1);
        expect(1 - off.cosine).toBeGreaterThan(4 * (1 - on.cosine));
      }, 60_000);
    },
  );

  it("LSE restores the smoothing term: sage LSE tracks exact LSE under a large K bias", () => {
    const s = { B: 1, Hq: 2, Hkv: 2, Nq: 128, Nk: 128, D: 64 };
    const { q, k, v } = makeQKV(s, "k-bias", 8);
    const p = problemFor(2, 128, 64, { returnLse: true });
    const sage = sageReference(p, q, k, v), exact = exactReference(p, q, k, v);
    for (let r = 0; r < exact.lse.length; r++) {
      expect(Math.abs(sage.lse[r] - exact.lse[r])).toBeLessThan(BOUNDS.lseVsSage);
    }
  });
});
