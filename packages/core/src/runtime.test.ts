// Runs under Node, Bun and Deno (the package's test script runs it in each): the public import works and the
// result says which backend ran and what it computed.
import { describe, expect, it } from "vitest";
import { accuracy, attention, BOUNDS, exactAttention, hostTensor, makeQKV, runtimeName } from "@sageattn/core";

describe(`@sageattn/core under ${runtimeName()}`, () => {
  it("imports, runs attention on the js backend and says so", async () => {
    const s = { B: 1, Hq: 2, Hkv: 2, Nq: 96, Nk: 96, D: 32 };
    const { q, k, v } = makeQKV(s, "k-bias", 2);
    const t = (a: Float32Array) => hostTensor(a, [1, 2, 96, 32]);
    const r = await attention(t(q), t(k), t(v), { backend: "js" });
    expect(r.backend).toBe("js");
    const e = await exactAttention(t(q), t(k), t(v));
    const a = accuracy(r.output.data as Float32Array, e.output.data as Float32Array);
    expect(a.cosine).toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
  });
  it("rejects with the tagged error itself", async () => {
    const t = hostTensor(new Float32Array(64), [1, 1, 4, 16]);
    const bad = hostTensor(new Float32Array(64), [1, 1, 2, 32]);
    await expect(attention(t, t, bad, { backend: "js" })).rejects.toMatchObject({
      _tag: "InvalidInput",
      reason: "InvalidShape",
    });
  });
});
