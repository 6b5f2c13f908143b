// A V too small for f16 (1e-8 came out as zeros) runs scaled by a power of two around the call: near exact at every
// scale, in every dtype, into a caller's strided `out`, with the caller's V untouched.
import { describe, expect, it } from "vitest";
import { attention, exactAttention } from "./api.js";
import { BOUNDS } from "./constants.js";
import { createKvCache } from "./kv-cache-api.js";
import { accuracy } from "./metrics.js";
import { makeQKV } from "./random.js";
import { fromCanonicalF32, type HostTensor, hostTensor, toCanonicalF32 } from "./tensor.js";
import { V_SCALE_BELOW, vShift } from "./v-scale.js";

const d = { B: 1, H: 2, N: 128, D: 64 };
const { q, k, v } = makeQKV({ B: 1, Hq: 2, Hkv: 2, Nq: 128, Nk: 128, D: 64 }, "gaussian", 7);
const tensors = (scale: number, dtype: "f32" | "f16" | "bf16") =>
  [q, k, v.map((x) => x * scale)].map((x) => fromCanonicalF32(x, d, dtype, "HND")) as [
    HostTensor,
    HostTensor,
    HostTensor,
  ];

describe("V too small for f16", () => {
  it("vShift puts the largest |v| in [1, 2), and leaves V of 2^-6 and more (or all zeros) alone", () => {
    for (const maxV of [1e-8, 3e-5, 2 ** -7, 1e-30]) {
      const scaled = maxV * 2 ** vShift(maxV);
      expect(scaled).toBeGreaterThanOrEqual(1);
      expect(scaled).toBeLessThan(2);
    }
    expect(vShift(V_SCALE_BELOW)).toBe(0);
    expect(vShift(0.5)).toBe(0);
    expect(vShift(0)).toBe(0);
  });

  for (const dtype of ["f32", "bf16"] as const) {
    for (const scale of [1e-6, 1e-8, 1e-12, 1e-30]) {
      for (const pvAccumulation of [undefined, "f32" as const]) {
        it(`${dtype} V times ${scale}, pvAccumulation ${pvAccumulation ?? "left out"}: within the exact bound`, async () => {
          const [qt, kt, vt] = tensors(scale, dtype);
          const before = Array.from(vt.data);
          const r = await attention(qt, kt, vt, { backend: "js", pvAccumulation });
          const ref = await exactAttention(qt, kt, vt);
          const a = accuracy(toCanonicalF32(r.output), toCanonicalF32(ref.output));
          expect(a.cosine).toBeGreaterThan(BOUNDS.exact.minCosine);
          expect(a.relL1).toBeLessThan(BOUNDS.exact.maxRelL1 + BOUNDS.outputRounding[dtype]);
          expect(Array.from(vt.data)).toEqual(before);
        });
      }
    }
  }

  it("f16 V of 1e-4 (under f16's normal range in places): as near exact as the f16 output allows", async () => {
    const [qt, kt, vt] = tensors(1e-4, "f16");
    const r = await attention(qt, kt, vt, { backend: "js" });
    const ref = await exactAttention(qt, kt, vt);
    const a = accuracy(toCanonicalF32(r.output), toCanonicalF32(ref.output));
    expect(a.cosine).toBeGreaterThan(BOUNDS.exact.minCosine);
  });

  it("a caller's transposed out receives the scaled-back output", async () => {
    const [qt, kt, vt] = tensors(1e-8, "f32");
    const data = new Float32Array(2 * 128 * 64);
    const out = hostTensor(data, [1, 2, 128, 64], { strides: [16384, 64, 128, 1] });
    const r = await attention(qt, kt, vt, { backend: "js", out });
    expect(r.output).toBe(out);
    const ref = toCanonicalF32((await exactAttention(qt, kt, vt)).output);
    expect(accuracy(toCanonicalF32(out), ref).cosine).toBeGreaterThan(BOUNDS.exact.minCosine);
  });

  it("a KV cache whose V is all that small says so at attend (OutOfRange), not zeros", async () => {
    const cache = await createKvCache({
      batch: 1,
      headsKv: 2,
      headDim: 64,
      capacity: 256,
      dtype: "f32",
      backend: "js",
    });
    const [, kt, vt] = tensors(1e-8, "f32");
    await cache.append(kt, vt);
    const e = await cache.attend(tensors(1, "f32")[0]).catch((x: unknown) => x);
    expect(e).toMatchObject({ _tag: "InvalidInput", reason: "OutOfRange" });
    await cache.dispose();
  });
});
