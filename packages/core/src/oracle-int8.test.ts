import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { BOUNDS, exactBound, INT8_MAX, LOG2E, P_BLOCK, U8_MAX } from "./constants.js";
import { accuracy } from "./metrics.js";
import { exactReference } from "./oracle-exact.js";
import { sageReference } from "./oracle-sage.js";
import { resolveProblem } from "./problem.js";
import { quantizeChannelsInt8 } from "./quantize.js";
import { type Distribution, makeQKV } from "./random.js";
import { hostTensor } from "./tensor.js";
import { problemFor } from "./test-support/problem-for.js";

describe("int8 P·V in the sage oracle", () => {
  // Measured (N 256, seeds 1–2): rel-L1 0.0155–0.0164 on gaussian and k-bias (fp8 0.036–0.038), 0.024 on heavy-tail
  // (fp8 0.039), where Q·Kᵀ's quantization is a larger share of the error.
  it.each(
    [
      ["gaussian", 64, 0.6],
      ["gaussian", 128, 0.6],
      ["k-bias", 64, 0.6],
      ["k-bias", 128, 0.6],
      ["heavy-tail", 64, 0.7],
    ] as const,
  )("meets the exact bound on %s inputs, D%i, at most %f× fp8's rel-L1", (dist: Distribution, D, ratio) => {
    const N = 256;
    const p = problemFor(N, N, D, {}, 2);
    const bound = exactBound(dist === "heavy-tail", "int8");
    for (const seed of [1, 2]) {
      const { q, k, v } = makeQKV({ B: 1, Hq: 2, Hkv: 2, Nq: N, Nk: N, D }, dist, seed);
      const exact = exactReference(p, q, k, v).output;
      const int8 = accuracy(sageReference({ ...p, pvAccumulation: "int8" }, q, k, v).output, exact);
      const fp8 = accuracy(sageReference({ ...p, pvAccumulation: "fp8" }, q, k, v).output, exact);
      const what = `${dist} D${D} seed ${seed}: int8 cos ${int8.cosine} rel-L1 ${int8.relL1}, fp8 rel-L1 ${fp8.relL1}`;
      expect(int8.cosine, what).toBeGreaterThanOrEqual(bound.minCosine);
      expect(int8.relL1, what).toBeLessThanOrEqual(bound.maxRelL1);
      expect(int8.relL1, what).toBeLessThanOrEqual(ratio * fp8.relL1);
    }
  }, 30_000); // four oracles of N 256 per case: seconds on a busy 2-core CI machine

  it("scales P per 128-key block: a huge logit in block 0 zeroes its small keys, not block 1's", () => {
    // One query, D 4, smScale·log2e = 1, no smoothing: logits are q·k (Q quantizes to 127, every K block's max is 127).
    // Key 0 has logit 16; keys 64, 65 (block 0) and 128, 129 (block 1) have 0 and −2; every other key −127.
    const [N, D] = [256, 4];
    const p = problemFor(1, N, D, { smScale: 1 / LOG2E, smoothK: false, pvAccumulation: "int8" });
    const q = Float32Array.of(1, 0, 0, 0);
    const k = new Float32Array(N * D);
    for (let j = 0; j < N; j++) k[j * D] = -127;
    const keys = [128, 129, 64, 65]; // output channel c reads key keys[c] alone (V one-hot)
    [k[0], k[64 * D], k[65 * D], k[128 * D], k[129 * D]] = [16, 0, -2, 0, -2];
    const v = new Float32Array(N * D);
    keys.forEach((j, c) => (v[j * D + c] = 1));
    const out = sageReference(p, q, k, v).output;
    const exact = exactReference(p, q, k, v).output;
    // Block 0's max is key 0's logit: 255·2^-16 and 255·2^-18 round to 0, so keys 64 and 65 drop out…
    expect(U8_MAX * 2 ** -16).toBeLessThan(0.5);
    expect([out[2], out[3]]).toEqual([0, 0]);
    expect(exact[2]).toBeGreaterThan(0);
    // …while block 1 has its own max (key 128): u = 255 and round(255/4) = 64, their weights kept (up to the 2^-16
    // of the row's weight that keys 64 and 65 took out of l̂ as well).
    expect(out[0] / exact[0]).toBeCloseTo(1, 4);
    expect(out[1] / out[0]).toBeCloseTo(64 / 255, 12);
    expect(out[1] / exact[1]).toBeCloseTo(256 / 255, 4);
    expect(P_BLOCK).toBe(128);
  });

  it("scales V per channel: one channel ×1000 scales that output channel alone", () => {
    const [N, D] = [200, 8]; // two P blocks, the second partial
    const p = problemFor(3, N, D, { pvAccumulation: "int8" });
    const { q, k, v } = makeQKV({ B: 1, Hq: 1, Hkv: 1, Nq: 3, Nk: N, D }, "gaussian", 5);
    const scaled = v.slice();
    for (let j = 0; j < N; j++) scaled[j * D + 3] *= 1000;
    const a = sageReference(p, q, k, v).output;
    const b = sageReference(p, q, k, scaled).output;
    for (let i = 0; i < 3; i++) {
      for (let d = 0; d < D; d++) {
        const where = `row ${i} channel ${d}`;
        if (d === 3) expect(b[i * D + d] / a[i * D + d], where).toBeCloseTo(1000, 3);
        else expect(b[i * D + d], where).toBe(a[i * D + d]);
      }
    }
  });

  it("quantizes V per channel to round(v / (max|v| / 127)), without subtracting a mean", () => {
    const D = 3;
    const v = Float32Array.of(10, -2, 0, 12, 0.9, 0, 11, 0.5, 0); // channel 2 all zero
    const { values, scales } = quantizeChannelsInt8(v, 0, 3, D);
    expect(Array.from(scales)).toEqual([Math.fround(12 / INT8_MAX), Math.fround(2 / INT8_MAX), 1]);
    expect(Array.from(values)).toEqual([106, -127, 0, 127, 57, 0, 116, 32, 0]);
    const bad = quantizeChannelsInt8(Float32Array.of(1, Infinity, 2, 3), 0, 2, 2);
    expect(Number.isNaN(bad.scales[1])).toBe(true);
  });

  it("weighs each key by an integer u in 0..255: with V one-hot, 255·O[d] / max O is u_d", () => {
    // One 64-key block, D = N: channel d reads key d alone, so O[d] = sV·(u_d·127)/(255·l) and the block's
    // largest logit has u = 255.
    const N = 64;
    const p = problemFor(4, N, N, { pvAccumulation: "int8" });
    const { q, k } = makeQKV({ B: 1, Hq: 1, Hkv: 1, Nq: 4, Nk: N, D: N }, "gaussian", 9);
    const v = new Float32Array(N * N);
    for (let j = 0; j < N; j++) v[j * N + j] = 1;
    const out = sageReference(p, q, k, v).output;
    const f32 = sageReference({ ...p, pvAccumulation: "f32" }, q, k, v).output;
    let between = 0;
    for (let i = 0; i < 4; i++) {
      const row = out.subarray(i * N, i * N + N);
      const top = Math.max(...row);
      const topF32 = Math.max(...f32.subarray(i * N, i * N + N));
      for (let d = 0; d < N; d++) {
        const u = (U8_MAX * row[d]) / top;
        expect(Math.abs(u - Math.round(u)), `row ${i} key ${d}: u ${u}`).toBeLessThan(1e-9);
        expect(u).toBeGreaterThanOrEqual(0);
        expect(u).toBeLessThanOrEqual(U8_MAX + 1e-9);
        // Within rounding of 255·P/P_max (f32 mode's P is rounded to f16: allow its error too).
        expect(Math.abs(u - (U8_MAX * f32[i * N + d]) / topF32), `row ${i} key ${d}`).toBeLessThan(0.5 + 0.2);
        if (u > 0.5 && u < U8_MAX - 0.5) between++;
      }
    }
    expect(between).toBeGreaterThan(20); // the check saw many values strictly between 0 and 255
  });

  it("turns a V channel holding NaN (unvalidated input) into NaN in every row, and only that channel", () => {
    const [N, D] = [150, 8];
    const p = problemFor(4, N, D, { pvAccumulation: "int8", validate: false });
    const { q, k, v } = makeQKV({ B: 1, Hq: 1, Hkv: 1, Nq: 4, Nk: N, D }, "gaussian", 3);
    v[140 * D + 5] = NaN; // key 140: the second P block
    const out = sageReference(p, q, k, v).output;
    for (let i = 0; i < 4; i++) {
      for (let d = 0; d < D; d++) expect(Number.isNaN(out[i * D + d]), `row ${i} channel ${d}`).toBe(d === 5);
    }
  });

  it("leaves rows without visible keys at zero with LSE −∞, and the LSE as the other modes give it", () => {
    const [Nq, Nk, D] = [150, 130, 16]; // causal, bottom-right: the first 20 rows see nothing
    const p = problemFor(Nq, Nk, D, { causal: true, returnLse: true }, 2);
    const { q, k, v } = makeQKV({ B: 1, Hq: 2, Hkv: 2, Nq, Nk, D }, "k-bias", 4);
    const int8 = sageReference({ ...p, pvAccumulation: "int8" }, q, k, v);
    const f32 = sageReference({ ...p, pvAccumulation: "f32" }, q, k, v);
    expect(Array.from(int8.lse)).toEqual(Array.from(f32.lse));
    for (let r = 0; r < 20; r++) {
      expect(int8.lse[r]).toBe(-Infinity);
      expect(Array.from(int8.output.subarray(r * D, r * D + D))).toEqual(new Array(D).fill(0));
    }
    expect(accuracy(int8.output, exactReference(p, q, k, v).output).relL1).toBeLessThan(BOUNDS.exact.maxRelL1);
  });
});

describe("int8 P·V validation", () => {
  const t = (x = 1) => hostTensor(new Float32Array(2 * 8 * 16).fill(x), [1, 2, 8, 16]);

  it("is accepted; an unknown mode's error lists it", () => {
    expect(problemFor(8, 8, 16, { pvAccumulation: "int8" }).pvAccumulation).toBe("int8");
    const bad = Effect.runSync(Effect.flip(resolveProblem(t(), t(), t(), { pvAccumulation: "int4" as never })));
    expect(bad).toMatchObject({ reason: "InvalidOption" });
    expect(bad.message).toContain('"int8"');
  });

  it("keeps V within f16's range, as fp8 does, and says so", () => {
    const err = Effect.runSync(Effect.flip(resolveProblem(t(), t(), t(70000), { pvAccumulation: "int8" })));
    expect(err).toMatchObject({ reason: "OutOfRange" });
    expect(err.message).toContain("keeps V within f16's range");
  });
});
