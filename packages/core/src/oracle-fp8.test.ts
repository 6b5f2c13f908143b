import { describe, expect, it } from "vitest";
import { BOUNDS, E4M3_MAX, exactBound, LOG2E } from "./constants.js";
import { roundE4m3 } from "./fp8.js";
import { accuracy } from "./metrics.js";
import { exactReference } from "./oracle-exact.js";
import { sageReference } from "./oracle-sage.js";
import { makeQKV } from "./random.js";
import { problemFor } from "./test-support/problem-for.js";

describe("fp8 P·V in the sage oracle", () => {
  it("rounds 448·P to e4m3: two keys with P = 1 and 0.3 give 128/448 for the second, not 0.3, in P·V and in l", () => {
    // smScale·log2e = 1 and one channel quantize exactly (±127), so the second logit is log2(0.3) to f32 precision.
    const p = problemFor(1, 2, 1, { smScale: 1 / LOG2E, smoothK: false, pvAccumulation: "fp8" });
    const q = Float32Array.of(1);
    const k = Float32Array.of(0, Math.log2(0.3));
    const v = Float32Array.of(0, 1);
    const out = sageReference(p, q, k, v).output[0];
    expect(roundE4m3(0.3 * E4M3_MAX)).toBe(128); // 134.4 lies between 128 and 144 (step 16), nearer 128
    expect(out).toBeCloseTo(128 / (E4M3_MAX + 128), 6); // l sums the rounded P too: 1 + 128/448
    expect(sageReference({ ...p, pvAccumulation: "f32" }, q, k, v).output[0]).toBeCloseTo(0.3 / 1.3, 3);
  });

  it("scales V per channel to ±448: with equal logits the output is the mean of each channel's e4m3 values", () => {
    const [N, D] = [100, 8]; // two key blocks, the second partial
    const p = problemFor(3, N, D, { pvAccumulation: "fp8" });
    const q = new Float32Array(3 * D); // zero queries: every logit 0, every P exactly 1
    const k = Float32Array.from({ length: N * D }, (_, i) => Math.sin(i));
    // Channel d spans 10^(d−4): a single scale for all channels would flush the small ones to zero.
    const v = Float32Array.from({ length: N * D }, (_, i) => Math.cos(i * 0.7) * 10 ** ((i % D) - 4));
    const out = sageReference(p, q, k, v).output;
    for (let d = 0; d < D; d++) {
      let amax = 0;
      for (let j = 0; j < N; j++) amax = Math.max(amax, Math.abs(v[j * D + d]));
      const scale = Math.fround(amax / E4M3_MAX);
      let sum8 = 0, sum = 0;
      for (let j = 0; j < N; j++) {
        sum8 += roundE4m3(Math.fround(v[j * D + d] / scale));
        sum += v[j * D + d];
      }
      const want = (sum8 * scale) / N;
      for (let i = 0; i < 3; i++) expect(out[i * D + d] / want, `row ${i} channel ${d}`).toBeCloseTo(1, 12);
      // The rounding shows: e4m3 moves the mean by more than f32 would, and by less than one step (1/16) of amax.
      expect(Math.abs(want - sum / N)).toBeGreaterThan(1e-6 * amax);
      expect(Math.abs(want - sum / N)).toBeLessThan(amax / 16);
    }
  });

  it("turns a V channel holding NaN (unvalidated input) into NaN in every row, and only that channel", () => {
    const [N, D] = [70, 8];
    const p = problemFor(4, N, D, { pvAccumulation: "fp8", validate: false });
    const q = Float32Array.from({ length: 4 * D }, (_, i) => Math.cos(i));
    const k = Float32Array.from({ length: N * D }, (_, i) => Math.sin(i));
    const v = Float32Array.from({ length: N * D }, (_, i) => Math.sin(i * 0.3));
    v[65 * D + 2] = NaN; // key 65: the second block
    const out = sageReference(p, q, k, v).output;
    for (let i = 0; i < 4; i++) {
      for (let d = 0; d < D; d++) expect(Number.isNaN(out[i * D + d]), `row ${i} channel ${d}`).toBe(d === 2);
    }
  });

  it("meets BOUNDS.fp8 against exact attention on k-bias inputs, a measured step below f16 P·V", () => {
    const p = problemFor(256, 256, 64, {}, 2);
    const got: number[][] = [];
    for (const seed of [1, 2, 3]) {
      const { q, k, v } = makeQKV({ B: 1, Hq: 2, Hkv: 2, Nq: 256, Nk: 256, D: 64 }, "k-bias", seed);
      const exact = exactReference(p, q, k, v).output;
      const fp8 = accuracy(sageReference({ ...p, pvAccumulation: "fp8" }, q, k, v).output, exact);
      const f16 = accuracy(sageReference(p, q, k, v).output, exact);
      got.push([fp8.cosine, fp8.relL1, f16.relL1]);
      expect(fp8.cosine).toBeGreaterThanOrEqual(exactBound(false, "fp8").minCosine);
      expect(fp8.relL1).toBeLessThanOrEqual(BOUNDS.fp8.maxRelL1);
    }
    // Measured: cos 0.99933–0.99936, rel-L1 0.0358–0.0363 (f16 P·V 0.0117–0.0121). e4m3 keeps 3 significand bits,
    // about 2% RMS error on each of P and V, which random V does not average away: issue 16's 0.9995 / 0.03 is out
    // of reach of this rule on Gaussian V, and these numbers say by how much.
    for (const [cos, relL1, f16RelL1] of got) {
      expect(cos).toBeGreaterThan(0.9993);
      expect(cos).toBeLessThan(0.9995);
      expect(relL1).toBeGreaterThan(0.034);
      expect(relL1).toBeLessThan(0.038);
      expect(relL1 / f16RelL1).toBeGreaterThan(2.8);
    }
  }, 30_000); // nine oracles of N 256: seconds on a busy 2-core CI machine
});
