import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { jsBackend } from "./js-backend.js";
import { createKvCache, type KvCacheOptions } from "./kv-cache-api.js";
import { kvCacheReference, type KvCacheSpec } from "./kv-cache.js";
import { sageReference } from "./oracle-sage.js";
import { resolveProblem } from "./problem.js";
import { K_BLOCK } from "./constants.js";
import { channelMean, quantizeRows } from "./quantize.js";
import { makeQKV } from "./random.js";
import { registerBackend } from "./registry.js";
import { referenceCacheFrom } from "./test-support/reference-cache.js";
import { fromCanonicalF32, type HostTensor, hostTensor, toCanonicalF32 } from "./tensor.js";

const B = 2, Hkv = 2, Hq = 4, D = 32, N = 150, Nq = 3;
const spec: KvCacheSpec = {
  batch: B,
  headsKv: Hkv,
  headDim: D,
  capacity: 200,
  dtype: "f32",
  layout: "HND",
  smoothK: true,
  valueFormat: "f16",
};
const { q, k, v } = makeQKV({ B, Hq, Hkv, Nq, Nk: N, D }, "k-bias", 7);

/** Rows [r0, r1) of every (b, kv head) of a canonical [B, Hkv, N, D] array. */
function rows(src: Float32Array, r0: number, r1: number): Float32Array {
  const out = new Float32Array(B * Hkv * (r1 - r0) * D);
  for (let h = 0; h < B * Hkv; h++) out.set(src.subarray((h * N + r0) * D, (h * N + r1) * D), h * (r1 - r0) * D);
  return out;
}
const tensor = (vals: Float32Array, H: number, n: number) => hostTensor(vals, [B, H, n, D]);
const problemFor = (len: number, causal = false) =>
  Effect.runSync(
    resolveProblem(tensor(q, Hq, Nq), tensor(rows(k, 0, len), Hkv, len), tensor(rows(v, 0, len), Hkv, len), {
      causal,
      returnLse: true,
    }),
  );

const build = (appends: readonly number[], s: KvCacheSpec = spec) => referenceCacheFrom(s, k, v, N, appends);
const firstMean = (n: number) => {
  const m = new Float32Array(B * Hkv * D);
  const first = rows(k, 0, n);
  for (let h = 0; h < B * Hkv; h++) m.set(channelMean(first, h * n, n, D), h * D);
  return m;
};

describe("kvCacheReference", () => {
  it("holds the first append's mean and the rows as appended", () => {
    const c = build([100, 1, 1, 48]);
    expect(c.length).toBe(150);
    expect(Array.from(c.mean())).toEqual(Array.from(firstMean(100)));
    expect(Array.from(c.keys())).toEqual(Array.from(k));
    expect(Array.from(c.values())).toEqual(Array.from(v));
  });

  it("several appends equal the prefill and one append of the rest, bit for bit", () => {
    const many = build([100, ...Array.from({ length: 30 }, () => 1), 20]);
    const two = build([100, 50]);
    const p = problemFor(150, true);
    expect(Array.from(many.attend(p, q).output)).toEqual(Array.from(two.attend(p, q).output));
    expect(Array.from(many.attend(p, q).lse)).toEqual(Array.from(two.attend(p, q).lse));
  });

  it("without smoothing, any split of the rows equals one append", () => {
    const s = { ...spec, smoothK: false };
    const p = { ...problemFor(150), smoothK: false };
    const one = build([150], s).attend(p, q);
    const many = build([1, 63, 1, 70, 15], s).attend(p, q);
    expect(Array.from(many.output)).toEqual(Array.from(one.output));
  });

  it("attend equals one-shot sageReference with the cache's mean, and differs from a recomputed mean", () => {
    const c = build([100, 30, 20]);
    const p = problemFor(150, true);
    const want = sageReference(p, q, k, v, firstMean(100));
    const got = c.attend(p, q);
    expect(Array.from(got.output)).toEqual(Array.from(want.output));
    expect(Array.from(got.lse)).toEqual(Array.from(want.lse));
    const ownMean = sageReference(p, q, k, v);
    expect(Array.from(got.output)).not.toEqual(Array.from(ownMean.output));
    // The LSE restores the mean it removed: the two differ only by rounding.
    for (let r = 0; r < got.lse.length; r++) expect(Math.abs(got.lse[r] - ownMean.lse[r])).toBeLessThan(0.05);
  });

  it("requantize: K̂ from the quantized full blocks and the raw partial block, the new mean over every row", () => {
    const c = build([100, 1, 49]);
    const before = firstMean(100);
    c.requantize();
    const full = Math.floor(150 / K_BLOCK) * K_BLOCK;
    const kHat = new Float32Array(k.length);
    const mean = new Float32Array(B * Hkv * D);
    for (let h = 0; h < B * Hkv; h++) {
      const mu = before.subarray(h * D, (h + 1) * D);
      const kq = quantizeRows(k, h * N, N, D, K_BLOCK, 1, mu);
      for (let r = 0; r < N; r++) {
        for (let d = 0; d < D; d++) {
          const i = (h * N + r) * D + d;
          const centred = r < full
            ? Math.fround(kq.values[r * D + d] * kq.scales[Math.floor(r / K_BLOCK)])
            : Math.fround(k[i] - mu[d]);
          kHat[i] = Math.fround(centred + mu[d]);
        }
      }
      mean.set(channelMean(kHat, h * N, N, D), h * D);
    }
    expect(Array.from(c.keys())).toEqual(Array.from(kHat));
    expect(Array.from(c.mean())).toEqual(Array.from(mean));
    // K̂ is K up to the INT8 step of its block.
    let worst = 0;
    for (let i = 0; i < k.length; i++) worst = Math.max(worst, Math.abs(kHat[i] - k[i]));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(0.2);
    // Afterwards it equals a cache built by one append of K̂.
    const p = problemFor(150, true);
    const fresh = kvCacheReference(spec);
    fresh.append(kHat, v, N);
    expect(Array.from(c.attend(p, q).output)).toEqual(Array.from(fresh.attend(p, q).output));
    expect(Array.from(c.attend(p, q).output)).toEqual(Array.from(sageReference(p, q, kHat, v, mean).output));
  });

  it("requantize on an empty cache does nothing; the next append sets the mean", () => {
    const c = kvCacheReference(spec);
    c.requantize();
    c.append(rows(k, 0, 10), rows(v, 0, 10), 10);
    expect(Array.from(c.mean())).toEqual(Array.from(firstMean(10)));
  });
});

describe("createKvCache (js backend)", () => {
  const opts: KvCacheOptions = { backend: "js", batch: B, headsKv: Hkv, headDim: D, capacity: 200, dtype: "f32" };

  it("appends and attends like the oracle, in HND and NHD, and writes into out", async () => {
    for (const layout of ["HND", "NHD"] as const) {
      const cache = await createKvCache({ ...opts, layout });
      const as = (vals: Float32Array, H: number, n: number) => fromCanonicalF32(vals, { B, H, N: n, D }, "f32", layout);
      await cache.append(as(rows(k, 0, 100), Hkv, 100), as(rows(v, 0, 100), Hkv, 100));
      await cache.append(as(rows(k, 100, 150), Hkv, 50), as(rows(v, 100, 150), Hkv, 50));
      expect(cache.length).toBe(150);
      expect(cache.backend).toBe("js");
      const out = fromCanonicalF32(new Float32Array(B * Hq * Nq * D), { B, H: Hq, N: Nq, D }, "f32", layout);
      const r = await cache.attend(as(q, Hq, Nq), { causal: true, returnLse: true, out });
      expect(r.output).toBe(out);
      const want = sageReference(problemFor(150, true), q, k, v, firstMean(100));
      expect(Array.from(toCanonicalF32(out))).toEqual(Array.from(Float32Array.from(want.output)));
      expect(Array.from(r.lse!)).toEqual(Array.from(Float32Array.from(want.lse)));
      await cache.dispose();
    }
  });

  it("widens P·V to f32 when V is too large for f16 partial sums, as attention does", async () => {
    const cache = await createKvCache(opts);
    const big = rows(v, 0, 10).map((x) => x * 3000);
    await cache.append(tensor(rows(k, 0, 10), Hkv, 10), tensor(big, Hkv, 10));
    const r = await cache.attend(tensor(q, Hq, Nq));
    expect(toCanonicalF32(r.output as HostTensor).every(Number.isFinite)).toBe(true);
    // Unscanned too: the cache knows |v| from its appends.
    const blind = await cache.attend(tensor(q, Hq, Nq), { validate: false });
    expect(Array.from(toCanonicalF32(blind.output as HostTensor))).toEqual(
      Array.from(toCanonicalF32(r.output as HostTensor)),
    );
    const err = await cache.attend(tensor(q, Hq, Nq), { pvAccumulation: "f16-block" }).catch((e: unknown) =>
      e as { reason?: string }
    );
    expect(err).toMatchObject({ _tag: "InvalidInput", reason: "OutOfRange" });
    await cache.dispose();
  });

  const bad: [string, KvCacheOptions, string, string][] = [
    ["capacity 0", { ...opts, capacity: 0 }, "InvalidInput", "InvalidShape"],
    ["a fractional batch", { ...opts, batch: 1.5 }, "InvalidInput", "InvalidShape"],
    ["headDim 300", { ...opts, headDim: 300 }, "InvalidInput", "InvalidHeadDim"],
    ["an unknown dtype", { ...opts, dtype: "f64" as never }, "InvalidInput", "DTypeMismatch"],
    ["an unknown layout", { ...opts, layout: "NDH" as never }, "InvalidInput", "LayoutMismatch"],
    ["a misspelled option", { ...opts, capcity: 4 } as never, "InvalidInput", "InvalidOption"],
    ["smoothK not a boolean", { ...opts, smoothK: 1 as never }, "InvalidInput", "InvalidOption"],
    ["an unknown backend", { ...opts, backend: "nope" }, "BackendUnavailable", "NotInstalled"],
  ];
  for (const [name, o, tag, reason] of bad) {
    it(`rejects ${name} with ${tag}/${reason}`, async () => {
      await expect(createKvCache(o)).rejects.toMatchObject({ _tag: tag, reason });
    });
  }

  it("auto-selection passes over a backend without a cache, saying why; forcing it is Unsupported", async () => {
    registerBackend({
      name: "test-no-kv",
      priority: 400,
      load: Effect.succeed({
        ...jsBackend,
        name: "test-no-kv",
        capabilities: { ...jsBackend.capabilities, kvCache: false },
      }),
    });
    const { backend: _, ...auto } = opts;
    const cache = await createKvCache(auto);
    expect(cache.backend).not.toBe("test-no-kv");
    await cache.append(tensor(rows(k, 0, 4), Hkv, 4), tensor(rows(v, 0, 4), Hkv, 4));
    const r = await cache.attend(tensor(q, Hq, Nq));
    expect(r.rejected).toContainEqual({ backend: "test-no-kv", reason: "Unsupported", message: "no KV cache" });
    await cache.dispose();
    await expect(createKvCache({ ...opts, backend: "test-no-kv" })).rejects.toMatchObject({
      _tag: "BackendUnavailable",
      reason: "Unsupported",
    });
  });

  it("runs calls in the order they were made, without awaiting each", async () => {
    const cache = await createKvCache(opts);
    const a = cache.append(tensor(rows(k, 0, 100), Hkv, 100), tensor(rows(v, 0, 100), Hkv, 100));
    const late = cache.append(tensor(rows(k, 100, 150), Hkv, 50), tensor(rows(v, 100, 150), Hkv, 50));
    const r = cache.attend(tensor(q, Hq, Nq), { causal: true });
    const failed = cache.append(tensor(rows(k, 0, 60), Hkv, 60), tensor(rows(v, 0, 60), Hkv, 60)).catch((e: unknown) =>
      e
    );
    await Promise.all([a, late]);
    const want = sageReference(problemFor(150, true), q, k, v, firstMean(100));
    expect(Array.from(toCanonicalF32((await r).output as HostTensor))).toEqual(
      Array.from(Float32Array.from(want.output)),
    );
    expect(await failed).toMatchObject({ _tag: "InvalidInput", reason: "OutOfRange" });
    expect(cache.length).toBe(150);
    await cache.dispose();
  });
});
