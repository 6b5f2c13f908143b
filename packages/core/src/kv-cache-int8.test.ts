import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { kvValueFormats } from "./backend.js";
import { checkDecodeCase, decodeCases, decodeSpec } from "./conformance/decode-check.js";
import { jsBackend } from "./js-backend.js";
import { createKvCache, type KvCacheOptions, resolveKvCacheSpec } from "./kv-cache-api.js";
import { kvCacheReference, type KvCacheSpec, type KvValueFormat } from "./kv-cache.js";
import { accuracy } from "./metrics.js";
import { exactReference } from "./oracle-exact.js";
import { resolveProblem } from "./problem.js";
import { quantizeRows, roundHalfAway } from "./quantize.js";
import { type Distribution, makeQKV, type QKV } from "./random.js";
import { registerBackend } from "./registry.js";
import { referenceCacheFrom } from "./test-support/reference-cache.js";
import { hostTensor } from "./tensor.js";

describe("kvCacheReference with int8 values", () => {
  const [B, Hkv, D, N] = [2, 2, 32, 150];
  const spec: KvCacheSpec = {
    batch: B,
    headsKv: Hkv,
    headDim: D,
    capacity: N,
    dtype: "f32",
    layout: "HND",
    smoothK: true,
    valueFormat: "int8",
  };
  const { k, v } = makeQKV({ B, Hq: 4, Hkv, Nq: 1, Nk: N, D }, "gaussian", 11);
  const build = (appends: readonly number[]) => referenceCacheFrom(spec, k, v, N, appends);

  it("stores V̂ = f32(round(v/sV)·sV) with sV = max|v|/127 per row, K as appended", () => {
    const c = build([N]);
    const got = c.values();
    expect(Array.from(c.keys())).toEqual(Array.from(k));
    let moved = 0;
    for (let r = 0; r < B * Hkv * N; r++) {
      const row = v.subarray(r * D, (r + 1) * D);
      const sV = Math.fround(Math.max(...Array.from(row, Math.abs)) / 127);
      for (let d = 0; d < D; d++) {
        const q = roundHalfAway(Math.fround(row[d] / sV)) + 0; // + 0: the cache's zeros are +0, as Int8Array's
        expect(Math.abs(q), `row ${r} channel ${d}`).toBeLessThanOrEqual(127);
        expect(got[r * D + d], `row ${r} channel ${d}`).toBe(Math.fround(q * sV));
        // Within half a step of v (and a hair of f32 rounding).
        expect(Math.abs(got[r * D + d] - row[d])).toBeLessThanOrEqual(sV * (0.5 + 1e-6));
        if (got[r * D + d] !== row[d]) moved++;
      }
      // The row's largest |v| is a grid point: ±127·sV.
      const top = Math.max(...Array.from(got.subarray(r * D, (r + 1) * D), Math.abs));
      expect(top).toBe(Math.fround(127 * sV));
    }
    expect(moved / v.length).toBeGreaterThan(0.9); // Gaussian values almost never sit on a row's grid
  });

  it("keeps a zero row as zeros (scale 1) and a row of one large value and tiny ones by its own scale", () => {
    const c = kvCacheReference({ ...spec, batch: 1, headsKv: 1, capacity: 2 });
    const zero = new Float32Array(D);
    const spread = new Float32Array(D).fill(1e-6);
    spread[3] = 1000;
    spread[4] = -500;
    c.append(zero, zero, 1);
    c.append(zero, spread, 1);
    const got = c.values();
    expect(Array.from(got.subarray(0, D))).toEqual(Array.from(zero));
    const sV = Math.fround(1000 / 127);
    expect(got[D + 3]).toBe(Math.fround(127 * sV));
    expect(got[D + 4]).toBe(Math.fround(-64 * sV)); // −500/sV = −63.5 rounds away from zero
    expect(got[D]).toBe(0); // 1e-6 is far below half a step
    expect(Array.from(quantizeRows(spread, 0, 1, D, 1).scales)).toEqual([sV]);
  });

  it("appending the rows one by one equals one append, bit for bit", () => {
    const one = build([N]).values();
    const many = build(Array.from({ length: N }, () => 1)).values();
    const mixed = build([100, 1, 1, 48]).values();
    expect(Array.from(many)).toEqual(Array.from(one));
    expect(Array.from(mixed)).toEqual(Array.from(one));
  });

  it("requantize re-centres K and leaves V̂ as it is", () => {
    const c = build([100, 50]);
    const before = c.values();
    const kBefore = c.keys();
    c.requantize();
    expect(Array.from(c.values())).toEqual(Array.from(before));
    expect(Array.from(c.keys())).not.toEqual(Array.from(kBefore));
  });
});

interface Shape {
  readonly Hq: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly D: number;
}
const problem = (s: Shape) =>
  Effect.runSync(
    resolveProblem(
      hostTensor(new Float32Array(s.Hq * s.Nq * s.D), [1, s.Hq, s.Nq, s.D]),
      hostTensor(new Float32Array(s.Hkv * s.Nk * s.D), [1, s.Hkv, s.Nk, s.D]),
      hostTensor(new Float32Array(s.Hkv * s.Nk * s.D), [1, s.Hkv, s.Nk, s.D]),
      {},
    ),
  );

/** The output of an oracle cache keeping V as `format`, every row appended at once, for the inputs' queries. */
function attendOnce(x: QKV, format: KvValueFormat, s: Shape): Float64Array {
  const c = kvCacheReference({
    batch: 1,
    headsKv: s.Hkv,
    headDim: s.D,
    capacity: s.Nk,
    dtype: "f32",
    layout: "HND",
    smoothK: true,
    valueFormat: format,
  });
  c.append(x.k, x.v, s.Nk);
  return c.attend(problem(s), x.q).output;
}

describe("int8 values: accuracy of the format through the oracle", () => {
  const s: Shape = { Hq: 8, Hkv: 2, Nq: 1, Nk: 2048, D: 128 };
  for (const dist of ["gaussian", "k-bias"] as const satisfies readonly Distribution[]) {
    it(`B1 Hq8 Hkv2 D128 Nq1 Nk2048 ${dist}: int8 V̂ vs exact attention on the original V`, () => {
      const x = makeQKV({ B: 1, ...s }, dist, 41);
      const exact = exactReference(problem(s), x.q, x.k, x.v).output;
      const f16 = accuracy(attendOnce(x, "f16", s), exact);
      const int8 = accuracy(attendOnce(x, "int8", s), exact);
      console.log(
        `${dist}: f16 V cos ${f16.cosine.toFixed(6)} rel-L1 ${f16.relL1.toFixed(5)}; ` +
          `int8 V cos ${int8.cosine.toFixed(6)} rel-L1 ${int8.relL1.toFixed(5)}`,
      );
      // INT8 rounding of V shows, and costs a bounded amount over the f16 cache.
      expect(int8.cosine, `${dist} int8 cos`).toBeGreaterThanOrEqual(0.9999);
      expect(int8.relL1, `${dist} int8 rel-L1`).toBeLessThanOrEqual(0.015);
      expect(int8.relL1, `${dist}: int8 worse than f16`).toBeGreaterThan(f16.relL1);
      expect(int8.relL1 - f16.relL1, `${dist}: the cost of int8 V`).toBeLessThanOrEqual(0.004);
    });
  }
});

describe("valueFormat: validation and backends", () => {
  const opts: KvCacheOptions = { batch: 1, headsKv: 2, headDim: 16, capacity: 64 };

  it("defaults to f16, takes int8, rejects anything else with InvalidOption", () => {
    const spec = resolveKvCacheSpec(opts);
    expect("valueFormat" in spec && spec.valueFormat).toBe("f16");
    const int8 = resolveKvCacheSpec({ ...opts, valueFormat: "int8" });
    expect("valueFormat" in int8 && int8.valueFormat).toBe("int8");
    const bad = resolveKvCacheSpec({ ...opts, valueFormat: "fp8" as never });
    expect(bad).toMatchObject({ _tag: "InvalidInput", reason: "InvalidOption" });
    expect((bad as { message: string }).message).toMatch(/valueFormat must be "f16" or "int8", got "fp8"/);
  });

  it("the js backend keeps int8 values; a backend that does not say keeps f16 only", async () => {
    expect(kvValueFormats(jsBackend.capabilities)).toEqual(["f16", "int8"]);
    expect(kvValueFormats({ ...jsBackend.capabilities, kvValueFormats: undefined })).toEqual(["f16"]);
    const cache = await createKvCache({ ...opts, backend: "js", valueFormat: "int8" });
    expect(cache.backend).toBe("js");
    await cache.dispose();
  });
});

// A backend that keeps a cache but declares no value formats, as cpu-simd and webgpu do (cpu-simd's own test checks
// the real one by name).
registerBackend({
  name: "test-f16-values",
  priority: 400,
  load: Effect.succeed({
    ...jsBackend,
    name: "test-f16-values",
    capabilities: { ...jsBackend.capabilities, kvValueFormats: undefined },
  }),
});

describe("valueFormat on a backend with f16 values only", () => {
  const opts: KvCacheOptions = { batch: 1, headsKv: 2, headDim: 16, capacity: 64, dtype: "f32", valueFormat: "int8" };

  it("named, fails with BackendUnavailable (Unsupported) saying why", async () => {
    const err = await createKvCache({ ...opts, backend: "test-f16-values" }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ _tag: "BackendUnavailable", backend: "test-f16-values", reason: "Unsupported" });
    expect((err as { message: string }).message).toBe("int8 values (valueFormat) not supported");
  });

  it("is passed over by auto-selection for int8, with the reason recorded, and chosen for f16", async () => {
    const int8 = await createKvCache(opts);
    expect(int8.backend).not.toBe("test-f16-values");
    await int8.append(hostTensor(new Float32Array(32), [1, 2, 1, 16]), hostTensor(new Float32Array(32), [1, 2, 1, 16]));
    const r = await int8.attend(hostTensor(new Float32Array(64), [1, 4, 1, 16]));
    expect(r.rejected).toContainEqual({
      backend: "test-f16-values",
      reason: "Unsupported",
      message: "int8 values (valueFormat) not supported",
    });
    await int8.dispose();
    const f16 = await createKvCache({ ...opts, valueFormat: "f16" });
    expect(f16.backend).toBe("test-f16-values");
    await f16.dispose();
  });
});

describe("decode conformance with int8 values", () => {
  const limits = { maxD: 256, dtypes: ["f32", "f16", "bf16"] as const };

  it("gives the three int8 cases only to a backend that declares int8 values, after the f16 ones", () => {
    const js = decodeCases(jsBackend, limits);
    const without = decodeCases({ capabilities: { ...jsBackend.capabilities, kvValueFormats: undefined } }, limits);
    expect(js.filter((c) => c.valueFormat === "int8").map((c) => c.name)).toEqual([
      "decode B1 Hq8 Hkv2 Nq4 D128 k-bias f16 HND causal lse int8 V",
      "decode B1 Hq8 Hkv2 Nq1 D64 gaussian bf16 NHD lse int8 V",
      "decode B1 Hq8 Hkv2 Nq16 D128 heavy-tail f32 NHD causal lse int8 V",
    ]);
    expect(without.map((c) => c.name)).toEqual(js.slice(0, js.length - 3).map((c) => c.name));
    expect(decodeSpec(js[js.length - 1]).valueFormat).toBe("int8");
  });

  it("fails a cache that keeps f16 values when asked for int8 (the check sees V̂, not V)", async () => {
    registerBackend({
      name: "test-ignores-int8",
      priority: -10,
      load: Effect.succeed({
        ...jsBackend,
        name: "test-ignores-int8",
        kvCache: (s) => jsBackend.kvCache!({ ...s, valueFormat: "f16" }),
      }),
    });
    const c = decodeCases(jsBackend, limits).find((x) => x.valueFormat === "int8")!;
    const { checks } = await checkDecodeCase("test-ignores-int8", c, 5000);
    expect(checks.length).toBe(3);
    for (const r of checks) {
      expect(r.ok, r.where).toBe(false);
      expect(r.vsSage.relL1, r.where).toBeGreaterThan(0.005);
    }
    const honest = await checkDecodeCase("js", c, 5000);
    expect(honest.checks.map((r) => r.failures)).toEqual([[], [], []]);
  });
});
