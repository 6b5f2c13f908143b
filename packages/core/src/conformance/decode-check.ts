/**
 * Decode conformance without a test runner: the cases, the append schedule, and `checkDecodeCase`, which builds a
 * backend's KV cache in many appends beside core's host oracle cache (`kvCacheReference`, fed the same rows) and holds
 * every attend to it through `checkOutput` (the sage oracle of the backend's P·V mode with the cache's mean, exact
 * attention, the LSE; `BOUNDS`). The vitest suite (decode.ts) and the GPU machine's device check both call it:
 *   const checks = await checkDecodeCase("cuda", c, 5000, { requantize: true });
 */
import { Effect } from "effect";
import { type BackendName, type Capabilities, kvValueFormats } from "../backend.js";
import type { DType } from "../dtype.js";
import { createKvCache } from "../kv-cache-api.js";
import { type KvCacheReference, kvCacheReference, type KvCacheSpec, type KvValueFormat } from "../kv-cache.js";
import { resolveProblem } from "../problem.js";
import { type Distribution, makeQKV } from "../random.js";
import { loadBackend } from "../registry.js";
import { fromCanonicalF32, type HostTensor, type Layout, toCanonicalF32 } from "../tensor.js";
import { checkOutput, type CheckResult } from "./check.js";

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
  /** How the cache keeps V ("int8": V̂ per token, held to the oracle fed the same rows). */
  readonly valueFormat: KvValueFormat;
}

/** Rows appended, in order: a prefill, 1-row appends across the 128-row block edge, then a 30-row append. */
export const DECODE_APPENDS: readonly number[] = [100, ...Array.from({ length: 30 }, () => 1), 30];
/** Rows in the whole schedule. */
export const DECODE_ROWS: number = DECODE_APPENDS.reduce((a, b) => a + b, 0);
/** After how many appends each case attends (the prefill, mid-way across the block edge, the end). */
const ATTEND_AFTER = new Set([1, 25, DECODE_APPENDS.length]);
/** Rows appended after a requantize (in two appends, the last one row), before the cache is checked again. */
const AFTER_REQUANTIZE = 20;

type Sizes = [B: number, Hq: number, Hkv: number, Nq: number, D: number];
/** One case in the table below: sizes, dtype, layout, distribution, causal, returnLse, smoothK, valueFormat. */
type CaseRow = [...Sizes, DType, Layout, Distribution, boolean, boolean, boolean, KvValueFormat];

/** The decode cases a backend with these capabilities must pass, within `limits`. */
export function decodeCases(
  b: { readonly capabilities: Capabilities },
  limits: { maxD: number; dtypes: readonly DType[] },
): DecodeCase[] {
  const caps = b.capabilities;
  // New cases go last: a case's place in a backend's list is its seed (5000 + i), and the GPU machine's device check
  // requantizes the first three.
  const rows: CaseRow[] = [
    [1, 8, 2, 1, 64, "f32", "HND", "k-bias", false, false, true, "f16"],
    [1, 8, 2, 4, 128, "f16", "HND", "k-bias", true, true, true, "f16"],
    [1, 8, 2, 16, 64, "bf16", "NHD", "gaussian", true, true, true, "f16"],
    [2, 2, 2, 1, 128, "f16", "NHD", "k-bias", false, true, true, "f16"],
    [1, 8, 2, 4, 64, "f32", "NHD", "gaussian", false, true, true, "f16"],
    [1, 4, 1, 1, 128, "bf16", "HND", "heavy-tail", false, false, true, "f16"],
    [1, 8, 2, 16, 128, "f16", "HND", "sink", true, true, true, "f16"],
    [1, 8, 2, 4, 64, "f32", "HND", "gaussian", true, true, false, "f16"],
    [1, 8, 2, 4, 128, "f16", "HND", "k-bias", true, true, true, "int8"],
    [1, 8, 2, 1, 64, "bf16", "NHD", "gaussian", false, true, true, "int8"],
    [1, 8, 2, 16, 128, "f32", "NHD", "heavy-tail", true, true, true, "int8"],
  ];
  const all: Omit<DecodeCase, "name">[] = rows.map((
    [B, Hq, Hkv, Nq, D, dtype, layout, dist, causal, returnLse, smoothK, valueFormat],
  ) => ({
    B,
    Hq,
    Hkv,
    Nq,
    D,
    dtype,
    layout,
    dist,
    causal,
    returnLse,
    smoothK,
    valueFormat,
  }));
  return all
    .filter((c) =>
      c.D <= Math.min(limits.maxD, caps.maxHeadDim) && caps.dtypes.includes(c.dtype) && limits.dtypes.includes(c.dtype)
    )
    .filter((c) => (!c.causal || caps.causal) && (!c.returnLse || caps.lse))
    .filter((c) => kvValueFormats(caps).includes(c.valueFormat))
    .map((c) => ({
      ...c,
      name: `decode B${c.B} Hq${c.Hq} Hkv${c.Hkv} Nq${c.Nq} D${c.D} ${c.dist} ${c.dtype} ${c.layout}${
        c.causal ? " causal" : ""
      }${c.returnLse ? " lse" : ""}${c.smoothK ? "" : " smoothK=false"}${c.valueFormat === "int8" ? " int8 V" : ""}`,
    }));
}

/** Canonical HND f32 rows [r0, r1) of every (b, head) of a [B, H, N, D] array. */
export function rows(src: Float32Array, BH: number, N: number, D: number, r0: number, r1: number): Float32Array {
  const out = new Float32Array(BH * (r1 - r0) * D);
  for (let h = 0; h < BH; h++) out.set(src.subarray((h * N + r0) * D, (h * N + r1) * D), h * (r1 - r0) * D);
  return out;
}

export interface DecodeInputs {
  readonly q: HostTensor;
  /** K and V as stored (after the dtype's rounding), canonical f32 [B, Hkv, DECODE_ROWS, D]. */
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** The tensors of rows [r0, r1) in the case's dtype and layout. */
  readonly slice: (r0: number, r1: number) => { k: HostTensor; v: HostTensor };
}

export function decodeInputs(c: DecodeCase, seed: number): DecodeInputs {
  const raw = makeQKV({ B: c.B, Hq: c.Hq, Hkv: c.Hkv, Nq: c.Nq, Nk: DECODE_ROWS, D: c.D }, c.dist, seed);
  const BH = c.B * c.Hkv;
  const make = (vals: Float32Array, H: number, N: number) =>
    fromCanonicalF32(vals, { B: c.B, H, N, D: c.D }, c.dtype, c.layout);
  const k = toCanonicalF32(make(raw.k, c.Hkv, DECODE_ROWS));
  const v = toCanonicalF32(make(raw.v, c.Hkv, DECODE_ROWS));
  return {
    q: make(raw.q, c.Hq, c.Nq),
    k,
    v,
    slice: (r0, r1) => ({
      k: make(rows(k, BH, DECODE_ROWS, c.D, r0, r1), c.Hkv, r1 - r0),
      v: make(rows(v, BH, DECODE_ROWS, c.D, r0, r1), c.Hkv, r1 - r0),
    }),
  };
}

/** One checkpoint of a decode case: where in the schedule, and what `checkOutput` found there. */
export interface DecodeCheck extends CheckResult {
  readonly where: string;
}

/** The cache spec of a case (capacity: the schedule, the rows appended after a requantize, and some room). */
export function decodeSpec(c: DecodeCase): KvCacheSpec {
  return {
    batch: c.B,
    headsKv: c.Hkv,
    headDim: c.D,
    capacity: DECODE_ROWS + 32,
    dtype: c.dtype,
    layout: c.layout,
    smoothK: c.smoothK,
    valueFormat: c.valueFormat,
  };
}

/**
 * Judges one attend of a cache against the oracle cache holding the same rows: `checkOutput` over the oracle's stored
 * K, V and mean (after a requantize, K̂ and its mean; in an int8 cache V̂, so exact attention is held to V̂ too: the
 * format's own rounding is measured in kv-cache-int8.test.ts, not here), plus the output's kind, dtype and layout.
 */
export function checkAttend(
  c: DecodeCase,
  capabilities: Capabilities,
  reference: KvCacheReference,
  q: HostTensor,
  got: { readonly output: unknown; readonly lse?: Float32Array },
  exact: boolean,
): CheckResult {
  const len = reference.length;
  const [k, v] = [reference.keys(), reference.values()];
  const stored = (x: Float32Array) => fromCanonicalF32(x, { B: c.B, H: c.Hkv, N: len, D: c.D }, c.dtype, c.layout);
  const options = { causal: c.causal, returnLse: c.returnLse };
  const p = Effect.runSync(resolveProblem(q, stored(k), stored(v), options));
  const out = got.output as HostTensor;
  if (out.kind !== "host") throw new Error(`${c.name}: a host query gave a ${out.kind} output`);
  const failures: string[] = [];
  if (out.dtype !== p.outputDtype) failures.push(`output dtype ${out.dtype}, expected ${p.outputDtype}`);
  if (out.layout !== c.layout) failures.push(`output layout ${out.layout}, expected ${c.layout}`);
  const r = checkOutput({
    problem: p,
    q: toCanonicalF32(q),
    k,
    v,
    output: toCanonicalF32(out),
    lse: got.lse,
    capabilities,
    kMean: reference.mean(),
    exact: exact && c.smoothK && c.dist !== "heavy-tail" ? "normal" : undefined,
  });
  failures.push(...r.failures);
  return { ...r, ok: failures.length === 0, failures };
}

/**
 * Runs decode case `c` (inputs drawn with `seed`) on the named backend's KV cache: the appends of `DECODE_APPENDS`,
 * an attend at each checkpoint, and with `requantize` a requantize, an attend, 20 more rows and an attend. Each
 * attend is judged by `checkAttend`; a wrong cache length or backend is a failure of the next checkpoint. `last` is
 * the output of the schedule's final attend, canonical f32.
 */
export async function checkDecodeCase(
  backend: BackendName,
  c: DecodeCase,
  seed: number,
  o: { readonly requantize?: boolean } = {},
): Promise<{ readonly checks: readonly DecodeCheck[]; readonly last: Float32Array }> {
  const capabilities = (await Effect.runPromise(loadBackend(backend))).capabilities;
  const inputs = decodeInputs(c, seed);
  const spec = decodeSpec(c);
  const reference = kvCacheReference(spec);
  const cache = await createKvCache({ ...spec, backend });
  const BH = c.B * c.Hkv;
  const checks: DecodeCheck[] = [];
  const pending: string[] = [];
  if (cache.backend !== backend) pending.push(`the cache is on ${cache.backend}, not ${backend}`);
  let len = 0;
  let last: Float32Array = new Float32Array(0);
  const feed = async (n: number) => {
    const { k, v } = inputs.slice(len, len + n);
    await cache.append(k, v);
    reference.append(
      rows(inputs.k, BH, DECODE_ROWS, c.D, len, len + n),
      rows(inputs.v, BH, DECODE_ROWS, c.D, len, len + n),
      n,
    );
    len += n;
    if (cache.length !== len) pending.push(`cache length ${cache.length} after appends of ${len} rows`);
  };
  const attend = async (where: string, exact: boolean) => {
    const got = await cache.attend(inputs.q, { causal: c.causal, returnLse: c.returnLse });
    if (got.backend !== backend) pending.push(`attend ran on ${got.backend}, not ${backend}`);
    const r = checkAttend(c, capabilities, reference, inputs.q, got, exact);
    const failures = [...pending.splice(0), ...r.failures];
    checks.push({ ...r, ok: failures.length === 0, failures, where: `${c.name}, ${where}` });
    return toCanonicalF32(got.output as HostTensor);
  };
  try {
    for (let a = 0; a < DECODE_APPENDS.length; a++) {
      await feed(DECODE_APPENDS[a]);
      if (ATTEND_AFTER.has(a + 1)) last = await attend(`length ${len}`, true);
    }
    if (o.requantize) {
      await cache.requantize();
      reference.requantize();
      await attend(`requantized at length ${len}`, false);
      await feed(AFTER_REQUANTIZE - 1);
      await feed(1);
      await attend(`${AFTER_REQUANTIZE} rows appended after requantize`, false);
    }
    return { checks, last };
  } finally {
    await cache.dispose();
  }
}
