/**
 * Decode conformance (issue 14): a backend's KV cache, built in many appends, held to the oracle. Run by
 * `describeConformance` for every backend whose capabilities say kvCache.
 */
import { Effect } from "effect";
import { expect, it } from "vitest";
import type { AttentionBackend, BackendProvider, Capabilities } from "../backend.js";
import type { DType } from "../dtype.js";
import { createKvCache, type KvCache } from "../kv-cache-api.js";
import { kvCacheReference } from "../kv-cache.js";
import { accuracy } from "../metrics.js";
import { type AttentionOptions, resolveProblem } from "../problem.js";
import { channelMean } from "../quantize.js";
import { type Distribution, makeQKV } from "../random.js";
import { checkOutput } from "./check.js";
import { fromCanonicalF32, type HostTensor, hostTensor, type Layout, toCanonicalF32 } from "../tensor.js";

/** One decode case: the cache's shape and storage, the queries, and the options of every attend. */
export interface DecodeCase {
  readonly name: string;
  readonly B: number;
  readonly Hq: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly D: number;
  readonly dtype: DType;
  readonly layout: Layout;
  readonly dist: Distribution;
  readonly causal: boolean;
  readonly returnLse: boolean;
  readonly smoothK: boolean;
}

/** Rows appended, in order: a prefill, 1-row appends across the 128-row block edge, then a 30-row append. */
export const DECODE_APPENDS: readonly number[] = [100, ...Array.from({ length: 30 }, () => 1), 30];
const TOTAL = DECODE_APPENDS.reduce((a, b) => a + b, 0);
/** After how many appends each case attends (the prefill, mid-way across the block edge, the end). */
const ATTEND_AFTER = new Set([1, 25, DECODE_APPENDS.length]);

export interface DecodeBounds {
  readonly sageRelL1: number;
  readonly outputRounding: Readonly<Record<DType, number>>;
  readonly exactMinCosine: number;
  readonly exactMaxRelL1: number;
  readonly lseVsSage: number;
}

export function decodeCases(b: AttentionBackend, limits: { maxD: number; dtypes: readonly DType[] }): DecodeCase[] {
  const caps = b.capabilities;
  const all: Omit<DecodeCase, "name">[] = [
    {
      B: 1,
      Hq: 8,
      Hkv: 2,
      Nq: 1,
      D: 64,
      dtype: "f32",
      layout: "HND",
      dist: "k-bias",
      causal: false,
      returnLse: false,
      smoothK: true,
    },
    {
      B: 1,
      Hq: 8,
      Hkv: 2,
      Nq: 4,
      D: 128,
      dtype: "f16",
      layout: "HND",
      dist: "k-bias",
      causal: true,
      returnLse: true,
      smoothK: true,
    },
    {
      B: 1,
      Hq: 8,
      Hkv: 2,
      Nq: 16,
      D: 64,
      dtype: "bf16",
      layout: "NHD",
      dist: "gaussian",
      causal: true,
      returnLse: true,
      smoothK: true,
    },
    {
      B: 2,
      Hq: 2,
      Hkv: 2,
      Nq: 1,
      D: 128,
      dtype: "f16",
      layout: "NHD",
      dist: "k-bias",
      causal: false,
      returnLse: true,
      smoothK: true,
    },
    {
      B: 1,
      Hq: 8,
      Hkv: 2,
      Nq: 4,
      D: 64,
      dtype: "f32",
      layout: "NHD",
      dist: "gaussian",
      causal: false,
      returnLse: true,
      smoothK: true,
    },
    {
      B: 1,
      Hq: 4,
      Hkv: 1,
      Nq: 1,
      D: 128,
      dtype: "bf16",
      layout: "HND",
      dist: "heavy-tail",
      causal: false,
      returnLse: false,
      smoothK: true,
    },
    {
      B: 1,
      Hq: 8,
      Hkv: 2,
      Nq: 16,
      D: 128,
      dtype: "f16",
      layout: "HND",
      dist: "sink",
      causal: true,
      returnLse: true,
      smoothK: true,
    },
    {
      B: 1,
      Hq: 8,
      Hkv: 2,
      Nq: 4,
      D: 64,
      dtype: "f32",
      layout: "HND",
      dist: "gaussian",
      causal: true,
      returnLse: true,
      smoothK: false,
    },
  ];
  return all
    .filter((c) =>
      c.D <= Math.min(limits.maxD, caps.maxHeadDim) && caps.dtypes.includes(c.dtype) && limits.dtypes.includes(c.dtype)
    )
    .filter((c) => (!c.causal || caps.causal) && (!c.returnLse || caps.lse))
    .map((c) => ({
      ...c,
      name: `decode B${c.B} Hq${c.Hq} Hkv${c.Hkv} Nq${c.Nq} D${c.D} ${c.dist} ${c.dtype} ${c.layout}${
        c.causal ? " causal" : ""
      }${c.returnLse ? " lse" : ""}${c.smoothK ? "" : " smoothK=false"}`,
    }));
}

/** Canonical HND f32 rows [r0, r1) of every (b, head) of a [B, H, N, D] array. */
function rows(src: Float32Array, BH: number, N: number, D: number, r0: number, r1: number): Float32Array {
  const out = new Float32Array(BH * (r1 - r0) * D);
  for (let h = 0; h < BH; h++) out.set(src.subarray((h * N + r0) * D, (h * N + r1) * D), h * (r1 - r0) * D);
  return out;
}

interface DecodeInputs {
  readonly q: HostTensor;
  /** K and V as stored (after the dtype's rounding), canonical f32 [B, Hkv, TOTAL, D]. */
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** The tensors of rows [r0, r1) in the case's dtype and layout. */
  readonly slice: (r0: number, r1: number) => { k: HostTensor; v: HostTensor };
}

function decodeInputs(c: DecodeCase, seed: number): DecodeInputs {
  const raw = makeQKV({ B: c.B, Hq: c.Hq, Hkv: c.Hkv, Nq: c.Nq, Nk: TOTAL, D: c.D }, c.dist, seed);
  const BH = c.B * c.Hkv;
  const make = (vals: Float32Array, H: number, N: number) =>
    fromCanonicalF32(vals, { B: c.B, H, N, D: c.D }, c.dtype, c.layout);
  const k = toCanonicalF32(make(raw.k, c.Hkv, TOTAL));
  const v = toCanonicalF32(make(raw.v, c.Hkv, TOTAL));
  return {
    q: make(raw.q, c.Hq, c.Nq),
    k,
    v,
    slice: (r0, r1) => ({
      k: make(rows(k, BH, TOTAL, c.D, r0, r1), c.Hkv, r1 - r0),
      v: make(rows(v, BH, TOTAL, c.D, r0, r1), c.Hkv, r1 - r0),
    }),
  };
}

/** The smoothing means a cache must hold after its first append of `first` rows, f32 [B, Hkv, D]. */
function firstMeans(c: DecodeCase, k: Float32Array, first: number): Float32Array {
  const mean = new Float32Array(c.B * c.Hkv * c.D);
  if (!c.smoothK) return mean;
  for (let h = 0; h < c.B * c.Hkv; h++) mean.set(channelMean(k, h * TOTAL, first, c.D), h * c.D);
  return mean;
}

async function cacheFor(provider: BackendProvider, c: DecodeCase, capacity = TOTAL + 32): Promise<KvCache> {
  return createKvCache({
    backend: provider.name,
    batch: c.B,
    headsKv: c.Hkv,
    headDim: c.D,
    capacity,
    dtype: c.dtype,
    layout: c.layout,
    smoothK: c.smoothK,
  });
}

const attendOptions = (c: DecodeCase): AttentionOptions => ({ causal: c.causal, returnLse: c.returnLse });

/**
 * Holds one attend's output to `sageReference` with the cache's mean over rows [0, len) (the oracle of the backend's
 * P·V mode), to exact attention and its LSE to the sage oracle's: core's `checkOutput`, the same rule as one-shot
 * conformance.
 */
function checkAttend(
  c: DecodeCase,
  capabilities: Capabilities,
  inputs: DecodeInputs,
  len: number,
  mean: Float32Array,
  got: { output: unknown; lse?: Float32Array },
  where: string,
): void {
  const { k, v } = inputs.slice(0, len);
  const p = Effect.runSync(resolveProblem(inputs.q, k, v, attendOptions(c)));
  const out = got.output as HostTensor;
  expect(out.kind, where).toBe("host");
  expect(out.dtype, where).toBe(p.outputDtype);
  expect(out.layout, where).toBe(c.layout);
  const [q, kc, vc] = [inputs.q, k, v].map(toCanonicalF32);
  const r = checkOutput({
    problem: p,
    q,
    k: kc,
    v: vc,
    output: toCanonicalF32(out),
    lse: got.lse,
    capabilities,
    kMean: mean,
    exact: c.smoothK && c.dist !== "heavy-tail" ? "normal" : undefined,
  });
  expect(r.failures, `${where} (rel-L1 vs sage ${r.vsSage.relL1}, pv oracle ${r.pvOracle})`).toEqual([]);
}

/** Appends the schedule, attending at the checkpoints; returns the final output. */
async function runSchedule(
  provider: BackendProvider,
  capabilities: Capabilities,
  c: DecodeCase,
  seed: number,
): Promise<Float32Array> {
  const inputs = decodeInputs(c, seed);
  const mean = firstMeans(c, inputs.k, DECODE_APPENDS[0]);
  const cache = await cacheFor(provider, c);
  try {
    expect(cache.backend).toBe(provider.name);
    let len = 0;
    let last: Float32Array = new Float32Array(0);
    for (let a = 0; a < DECODE_APPENDS.length; a++) {
      const { k, v } = inputs.slice(len, len + DECODE_APPENDS[a]);
      await cache.append(k, v);
      len += DECODE_APPENDS[a];
      expect(cache.length).toBe(len);
      if (!ATTEND_AFTER.has(a + 1)) continue;
      const got = await cache.attend(inputs.q, attendOptions(c));
      expect(got.backend).toBe(provider.name);
      checkAttend(c, capabilities, inputs, len, mean, got, `${c.name}, length ${len}`);
      last = toCanonicalF32(got.output as HostTensor);
    }
    return last;
  } finally {
    await cache.dispose();
  }
}

/** The same rows in two appends (the prefill, then the rest at once): the same output within the sage bound. */
async function checkOneAppend(
  provider: BackendProvider,
  c: DecodeCase,
  bounds: DecodeBounds,
  seed: number,
  many: Float32Array,
): Promise<void> {
  const inputs = decodeInputs(c, seed);
  const cache = await cacheFor(provider, c);
  try {
    for (const [r0, r1] of [[0, DECODE_APPENDS[0]], [DECODE_APPENDS[0], TOTAL]]) {
      const { k, v } = inputs.slice(r0, r1);
      await cache.append(k, v);
    }
    const got = toCanonicalF32((await cache.attend(inputs.q, attendOptions(c))).output as HostTensor);
    const a = accuracy(got, many);
    expect(a.relL1, `${c.name}: two appends vs ${DECODE_APPENDS.length} (cos ${a.cosine})`).toBeLessThanOrEqual(
      bounds.sageRelL1 + bounds.outputRounding[c.dtype],
    );
  } finally {
    await cache.dispose();
  }
}

/** requantize vs the oracle's requantize, and appends after it. */
async function checkRequantize(
  provider: BackendProvider,
  c: DecodeCase,
  bounds: DecodeBounds,
  seed: number,
): Promise<void> {
  const inputs = decodeInputs(c, seed);
  const extra = 20;
  const spec = {
    batch: c.B,
    headsKv: c.Hkv,
    headDim: c.D,
    capacity: TOTAL + 32,
    dtype: c.dtype,
    layout: c.layout,
    smoothK: c.smoothK,
  };
  const oracle = kvCacheReference(spec);
  const cache = await cacheFor(provider, c);
  const BH = c.B * c.Hkv;
  try {
    let len = 0;
    const feed = async (n: number) => {
      const { k, v } = inputs.slice(len, len + n);
      await cache.append(k, v);
      oracle.append(rows(inputs.k, BH, TOTAL, c.D, len, len + n), rows(inputs.v, BH, TOTAL, c.D, len, len + n), n);
      len += n;
    };
    const compare = async (where: string) => {
      const got = await cache.attend(inputs.q, attendOptions(c));
      const { k, v } = inputs.slice(0, len);
      const p = Effect.runSync(resolveProblem(inputs.q, k, v, attendOptions(c)));
      const want = oracle.attend(p, toCanonicalF32(inputs.q));
      const other = oracle.attend(
        { ...p, pvAccumulation: p.pvAccumulation === "f32" ? "f16-block" : "f32" },
        toCanonicalF32(inputs.q),
      );
      const actual = toCanonicalF32(got.output as HostTensor);
      const a = [accuracy(actual, want.output), accuracy(actual, other.output)].reduce((
        x,
        y,
      ) => (y.relL1 < x.relL1 ? y : x));
      expect(a.nonFinite, where).toBe(0);
      expect(a.relL1, `${where}: rel-L1 vs the oracle's requantized cache (cos ${a.cosine})`).toBeLessThanOrEqual(
        bounds.sageRelL1 + bounds.outputRounding[p.outputDtype],
      );
      if (c.returnLse) {
        for (let r = 0; r < want.lse.length; r++) {
          expect(Math.abs(got.lse![r] - want.lse[r]), `${where}: lse row ${r}`).toBeLessThanOrEqual(
            bounds.lseVsSage * Math.max(1, Math.abs(want.lse[r])),
          );
        }
      }
    };
    for (const n of DECODE_APPENDS) await feed(n);
    await cache.requantize();
    oracle.requantize();
    await compare(`${c.name}, requantized at length ${len}`);
    await feed(extra - 1);
    await feed(1);
    await compare(`${c.name}, ${extra} rows appended after requantize`);
  } finally {
    await cache.dispose();
  }
}

/** A call on a cache that must fail, and the tagged error it must fail with. */
interface DecodeErrorCase {
  readonly name: string;
  readonly tag: "InvalidInput" | "DeviceError";
  readonly reason: string;
  readonly run: (cache: KvCache) => Promise<unknown>;
}

const D_ERR = 16;
const f16Rows = (B: number, H: number, n: number, D = D_ERR, fill = 0x3800) =>
  hostTensor(new Uint16Array(B * H * n * D).fill(fill), [B, H, n, D], { dtype: "f16" });

function decodeErrorCases(): DecodeErrorCase[] {
  const prefill = (cache: KvCache) => cache.append(f16Rows(1, 2, 8), f16Rows(1, 2, 8));
  return [
    {
      name: "an append past the capacity",
      tag: "InvalidInput",
      reason: "OutOfRange",
      run: async (c) => {
        await prefill(c);
        await c.append(f16Rows(1, 2, 60), f16Rows(1, 2, 60));
      },
    },
    {
      name: "k with the wrong number of kv heads",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: (c) => c.append(f16Rows(1, 3, 4), f16Rows(1, 3, 4)),
    },
    {
      name: "k of a wrong head dim",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: (c) => c.append(f16Rows(1, 2, 4, 8), f16Rows(1, 2, 4, 8)),
    },
    {
      name: "k and v of different lengths",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: (c) => c.append(f16Rows(1, 2, 4), f16Rows(1, 2, 5)),
    },
    {
      name: "k of rank 3",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: (c) => c.append({ ...f16Rows(1, 2, 4), shape: [1, 2, 64] as never }, f16Rows(1, 2, 4)),
    },
    {
      name: "k in f32 for an f16 cache",
      tag: "InvalidInput",
      reason: "DTypeMismatch",
      run: (c) => c.append(hostTensor(new Float32Array(128), [1, 2, 4, D_ERR]), f16Rows(1, 2, 4)),
    },
    {
      name: "k in NHD for an HND cache",
      tag: "InvalidInput",
      reason: "LayoutMismatch",
      run: (c) => c.append({ ...f16Rows(1, 2, 4), layout: "NHD" }, f16Rows(1, 2, 4)),
    },
    {
      name: "an infinite f16 in v",
      tag: "InvalidInput",
      reason: "NonFinite",
      run: (c) => {
        const v = f16Rows(1, 2, 4);
        (v.data as Uint16Array)[9] = 0x7c00;
        return c.append(f16Rows(1, 2, 4), v);
      },
    },
    {
      name: "attend on an empty cache",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: (c) => c.attend(f16Rows(1, 4, 1)),
    },
    {
      name: "q of a wrong head dim",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: async (c) => {
        await prefill(c);
        await c.attend(f16Rows(1, 4, 1, 32));
      },
    },
    {
      name: "q heads not a multiple of kv heads",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: async (c) => {
        await prefill(c);
        await c.attend(f16Rows(1, 3, 1));
      },
    },
    {
      name: "q of another batch size",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: async (c) => {
        await prefill(c);
        await c.attend(f16Rows(2, 4, 1));
      },
    },
    {
      name: "a NaN in q",
      tag: "InvalidInput",
      reason: "NonFinite",
      run: async (c) => {
        await prefill(c);
        await c.attend(f16Rows(1, 4, 1, D_ERR, 0x7e00));
      },
    },
    {
      name: "a mask on attend",
      tag: "InvalidInput",
      reason: "InvalidOption",
      run: async (c) => {
        await prefill(c);
        await c.attend(f16Rows(1, 4, 1), { mask: {} } as never);
      },
    },
    {
      name: "an append after dispose",
      tag: "DeviceError",
      reason: "Disposed",
      run: async (c) => {
        await c.dispose();
        await c.append(f16Rows(1, 2, 4), f16Rows(1, 2, 4));
      },
    },
    {
      name: "attend after dispose",
      tag: "DeviceError",
      reason: "Disposed",
      run: async (c) => {
        await prefill(c);
        await c.dispose();
        await c.dispose();
        await c.attend(f16Rows(1, 4, 1));
      },
    },
    {
      name: "requantize after dispose",
      tag: "DeviceError",
      reason: "Disposed",
      run: async (c) => {
        await c.dispose();
        await c.requantize();
      },
    },
  ];
}

/** Describes the decode cases (call inside the backend's describe block). */
export function describeDecodeConformance(
  provider: BackendProvider,
  backend: AttentionBackend,
  limits: { maxD: number; dtypes: readonly DType[] },
  bounds: DecodeBounds,
  timeout: number,
): void {
  const cases = decodeCases(backend, limits);
  cases.forEach((c, i) => {
    it(
      `${c.name}: appends ${DECODE_APPENDS[0]} + 30×1 + 30 vs the oracle with the cache's mean; two appends agree`,
      async () => {
        const many = await runSchedule(provider, backend.capabilities, c, 5000 + i);
        await checkOneAppend(provider, c, bounds, 5000 + i, many);
      },
      timeout,
    );
  });
  for (const c of cases.filter((x) => x.returnLse || !x.smoothK).slice(0, 3)) {
    it(
      `${c.name}: requantize vs the oracle's requantize, then appends`,
      () => checkRequantize(provider, c, bounds, 6000),
      timeout,
    );
  }
  for (const e of decodeErrorCases()) {
    it(`decode: rejects ${e.name} with ${e.tag}/${e.reason}, and the length stays`, async () => {
      const cache = await createKvCache({
        backend: provider.name,
        batch: 1,
        headsKv: 2,
        headDim: D_ERR,
        capacity: 64,
        dtype: "f16",
      });
      const err = await e.run(cache).then(
        () => undefined,
        (x: unknown) => x as { _tag?: string; reason?: string },
      );
      expect(err?._tag, "error tag").toBe(e.tag);
      expect(err?.reason, "error reason").toBe(e.reason);
      if (e.reason === "OutOfRange") expect(cache.length, "nothing appended").toBe(8);
      await cache.dispose();
    });
  }
}
