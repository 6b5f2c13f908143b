// The cpu-simd KV cache beyond the shared decode conformance: split-K (every block its own split) against the
// oracle, bits independent of the thread count, row tiles past 64 queries, threaded prefill appends, calls that share
// the memory with a live cache, and memory given back on dispose.
import {
  accuracy,
  type AttentionOptions,
  type BackendKvCache,
  BOUNDS,
  createKvCache,
  type HostTensor,
  hostTensor,
  kvCacheReference,
  type KvCacheSpec,
  kvCacheUnsupportedBy,
  makeQKV,
  resolveProblem,
  toCanonicalF32,
} from "@sageattn/core";
import { checkOutput } from "@sageattn/core/conformance/check";
import { Effect } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { type CpuSimdBackend, makeCpuSimd } from "./backend.js";
import { firstDifference } from "./test-inputs.js";

const split1two = await Effect.runPromise(makeCpuSimd({ threads: 2, decodeSplitBlocks: 1 }));
const split1one = await Effect.runPromise(makeCpuSimd({ threads: 1, decodeSplitBlocks: 1 }));
const plain = await Effect.runPromise(makeCpuSimd({ threads: 2 }));
afterAll(() => Effect.runPromise(Effect.all([split1two.dispose, split1one.dispose, plain.dispose])));

interface Case {
  readonly B: number;
  readonly Hq: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly D: number;
  readonly appends: readonly number[];
  readonly options: AttentionOptions;
}

const total = (c: Case) => c.appends.reduce((a, b) => a + b, 0);

/** Builds a cache on `backend` in the case's appends and attends; returns the output, the LSE and the oracle's. */
async function run(backend: CpuSimdBackend, c: Case, seed = 3) {
  const N = total(c);
  const raw = makeQKV({ B: c.B, Hq: c.Hq, Hkv: c.Hkv, Nq: c.Nq, Nk: N, D: c.D }, "k-bias", seed);
  const spec: KvCacheSpec = {
    batch: c.B,
    headsKv: c.Hkv,
    headDim: c.D,
    capacity: N + 10,
    dtype: "f32",
    layout: "HND",
    smoothK: true,
    valueFormat: "f16",
  };
  const rows = (src: Float32Array, r0: number, r1: number) => {
    const out = new Float32Array(c.B * c.Hkv * (r1 - r0) * c.D);
    for (let h = 0; h < c.B * c.Hkv; h++) {
      out.set(src.subarray((h * N + r0) * c.D, (h * N + r1) * c.D), h * (r1 - r0) * c.D);
    }
    return out;
  };
  const t = (x: Float32Array, H: number, n: number) => hostTensor(x, [c.B, H, n, c.D]);
  const cache: BackendKvCache = await Effect.runPromise(backend.kvCache!(spec));
  const oracle = kvCacheReference(spec);
  let len = 0;
  for (const n of c.appends) {
    const k = rows(raw.k, len, len + n), v = rows(raw.v, len, len + n);
    await Effect.runPromise(cache.append(t(k, c.Hkv, n), t(v, c.Hkv, n)));
    oracle.append(k, v, n);
    len += n;
  }
  const q = t(raw.q, c.Hq, c.Nq);
  const p = Effect.runSync(resolveProblem(q, t(raw.k, c.Hkv, N), t(raw.v, c.Hkv, N), c.options));
  const got = await Effect.runPromise(cache.attend(p, q));
  const output = toCanonicalF32(got.output as HostTensor);
  // Core's checkOutput over the rows and mean the oracle cache holds (the f32 oracle: cpu-simd's P·V is fixed16).
  const check = () =>
    checkOutput({
      problem: p,
      q: raw.q,
      k: oracle.keys(),
      v: oracle.values(),
      output,
      lse: got.lse,
      capabilities: backend.capabilities,
      kMean: oracle.mean(),
    });
  return { cache, p, q, output, lse: got.lse, check };
}

/** Core's verdict on a run, failing with what broke. */
function expectConforms(r: Awaited<ReturnType<typeof run>>, what: string): void {
  const c = r.check();
  expect(c.failures, `${what} (rel-L1 vs the ${c.pvOracle} oracle ${c.vsSage.relL1})`).toEqual([]);
}

const gqa: Case = {
  B: 1,
  Hq: 8,
  Hkv: 2,
  Nq: 4,
  D: 128,
  appends: [300, 1, 1, 1, 397],
  options: { causal: true, returnLse: true },
};

// Generous per-test time: the oracle runs in float64 JS, and CI shares two cores.
const TIMEOUT = 60_000;

describe("cpu-simd KV cache", () => {
  it("keeps V in its 16-bit format only: int8 values (valueFormat) are Unsupported, by name, with the reason", async () => {
    const spec: KvCacheSpec = {
      batch: 1,
      headsKv: 2,
      headDim: 16,
      capacity: 64,
      dtype: "f16",
      layout: "HND",
      smoothK: true,
      valueFormat: "int8",
    };
    expect(kvCacheUnsupportedBy(plain, spec)).toBe("int8 values (valueFormat) not supported");
    expect(kvCacheUnsupportedBy(plain, { ...spec, valueFormat: "f16" })).toBeUndefined();
    const err = await createKvCache({ ...spec, backend: "cpu-simd" }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ _tag: "BackendUnavailable", backend: "cpu-simd", reason: "Unsupported" });
  });

  it("split-K with every key block its own split tracks the oracle (GQA, causal, LSE)", async () => {
    const r = await run(split1two, gqa);
    expectConforms(r, "split-K, one block a split");
    await Effect.runPromise(r.cache.dispose);
  }, TIMEOUT);

  it("one thread and two threads give identical bits (splits depend on the length only)", async () => {
    const a = await run(split1one, gqa);
    const b = await run(split1two, gqa);
    expect(firstDifference(a.output, b.output), "first differing output element").toBe(-1);
    expect(firstDifference(a.lse!, b.lse!), "first differing LSE").toBe(-1);
    await Effect.runPromise(Effect.all([a.cache.dispose, b.cache.dispose]));
  }, TIMEOUT);

  it("the split size changes the result only within the sage bound", async () => {
    const a = await run(split1two, gqa);
    const b = await run(plain, gqa);
    expect(accuracy(a.output, b.output).relL1).toBeLessThanOrEqual(BOUNDS.sageRelL1);
    await Effect.runPromise(Effect.all([a.cache.dispose, b.cache.dispose]));
  }, TIMEOUT);

  it("more than 64 queries per head run in row tiles (Nq 100, causal)", async () => {
    const r = await run(split1two, {
      B: 2,
      Hq: 2,
      Hkv: 1,
      Nq: 100,
      D: 64,
      appends: [130, 70],
      options: { causal: true },
    });
    expectConforms(r, "Nq 100 in row tiles");
    await Effect.runPromise(r.cache.dispose);
  }, TIMEOUT);

  it("a threaded prefill append equals a single-threaded one, bit for bit", async () => {
    const c: Case = { B: 1, Hq: 4, Hkv: 2, Nq: 1, D: 128, appends: [1100, 3], options: {} };
    const a = await run(split1one, c, 9);
    const b = await run(split1two, c, 9);
    expect(firstDifference(a.output, b.output)).toBe(-1);
    expectConforms(b, "threaded prefill");
    await Effect.runPromise(Effect.all([a.cache.dispose, b.cache.dispose]));
  }, TIMEOUT);

  it("attention calls in between leave a live cache intact", async () => {
    const r = await run(plain, gqa);
    const x = makeQKV({ B: 1, Hq: 4, Hkv: 4, Nq: 600, Nk: 600, D: 128 }, "gaussian", 5);
    const big = (d: Float32Array) => hostTensor(d, [1, 4, 600, 128]);
    const p = Effect.runSync(resolveProblem(big(x.q), big(x.k), big(x.v)));
    await Effect.runPromise(plain.attention(p, big(x.q), big(x.k), big(x.v)));
    const again = toCanonicalF32((await Effect.runPromise(r.cache.attend(r.p, r.q))).output as HostTensor);
    expect(firstDifference(again, r.output)).toBe(-1);
    await Effect.runPromise(r.cache.dispose);
  }, TIMEOUT);

  it("unvalidated non-finite queries make their Q block's rows NaN (output and LSE), as the oracle does", async () => {
    const r = await run(split1two, gqa);
    const q = toCanonicalF32(r.q).slice();
    q[2 * 4 * 128 + 5] = Number.NaN; // head 2, row 0
    const bad = hostTensor(q, [1, 8, 4, 128]);
    const got = await Effect.runPromise(r.cache.attend({ ...r.p, validated: false }, bad));
    const out = toCanonicalF32(got.output as HostTensor);
    for (let h = 0; h < 8; h++) {
      for (let i = 0; i < 4; i++) {
        const row = out.subarray((h * 4 + i) * 128, (h * 4 + i + 1) * 128);
        expect(row.every(Number.isNaN), `head ${h} row ${i}`).toBe(h === 2);
        expect(Number.isNaN(got.lse![h * 4 + i])).toBe(h === 2);
      }
    }
    await Effect.runPromise(r.cache.dispose);
  }, TIMEOUT);

  it("dispose gives the cache's memory back: 50 caches made and disposed grow wasm memory once", async () => {
    const spec: KvCacheSpec = {
      batch: 1,
      headsKv: 8,
      headDim: 128,
      capacity: 4096,
      dtype: "f16",
      layout: "HND",
      smoothK: true,
      valueFormat: "f16",
    };
    const rows = () => hostTensor(new Uint16Array(8 * 3 * 128).fill(0x3c00), [1, 8, 3, 128], { dtype: "f16" });
    const cycle = async () => {
      const c = await Effect.runPromise(plain.kvCache!(spec));
      await Effect.runPromise(c.append(rows(), rows()));
      await Effect.runPromise(c.dispose);
    };
    await cycle();
    const bytes = plain.wasmMemoryBytes();
    for (let i = 0; i < 50; i++) await cycle();
    expect(plain.wasmMemoryBytes()).toBe(bytes);
  }, TIMEOUT);

  it(
    "a cache outliving its backend fails with DeviceError (Disposed), and one too large with OutOfMemory",
    async () => {
      const b = await Effect.runPromise(makeCpuSimd({ threads: 1 }));
      const spec: KvCacheSpec = {
        batch: 1,
        headsKv: 1,
        headDim: 16,
        capacity: 64,
        dtype: "f32",
        layout: "HND",
        smoothK: true,
        valueFormat: "f16",
      };
      const c = await Effect.runPromise(b.kvCache!(spec));
      await Effect.runPromise(b.dispose);
      const err = await Effect.runPromise(
        Effect.flip(
          c.append(hostTensor(new Float32Array(16), [1, 1, 1, 16]), hostTensor(new Float32Array(16), [1, 1, 1, 16])),
        ),
      );
      expect(err).toMatchObject({ _tag: "DeviceError", reason: "Disposed" });
      const huge = await Effect.runPromise(
        Effect.flip(plain.kvCache!({ ...spec, headsKv: 64, headDim: 256, capacity: 1 << 20 })),
      );
      expect(huge).toMatchObject({ _tag: "DeviceError", reason: "OutOfMemory" });
    },
    TIMEOUT,
  );
});
