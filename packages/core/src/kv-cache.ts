/**
 * The decode contract (issue 14): a KV cache a backend keeps quantized between calls, and its oracle.
 *
 * Per (batch entry, kv head) a cache holds the smoothing mean μ (fixed at the first append, or zeros without
 * smoothing), K − μ as INT8 in 64-row blocks with one f32 scale each, and V as f16. The partial last block is
 * re-quantized on every append from its raw rows, so a cache's contents equal one-shot quantization of the same K
 * with mean μ, block for block: the oracle of `attend` is one-shot `sageReference` with the mean given.
 *
 * With `valueFormat: "int8"` each appended V row j (its D values v_jd as f32, after the dtype's rounding) is kept as
 * INT8 with a scale of its own, by the rule K's blocks use (`quantizeRows`, a block of one row): sV = max_d |v_jd|/127
 * in f32 (1 for a zero row), q_jd = round(v_jd/sV) half away from zero; the stored value V̂_jd = f32(q_jd·sV).
 * Nothing else changes: K, μ and `requantize` (K only: V̂ stays) are as above, and `attend` is `sageReference` over
 * the stored K and V̂. A row's scale depends on that row alone, so any split of the same rows into appends gives the
 * same cache, and no stored row is ever quantized twice.
 */
import type { Effect } from "effect";
import type { AttentionOutput } from "./backend.js";
import type { DType } from "./dtype.js";
import type { SageAttnError } from "./errors.js";
import type { Reference } from "./oracle-exact.js";
import { sageReference } from "./oracle-sage.js";
import type { Problem } from "./problem.js";
import { K_BLOCK } from "./constants.js";
import { channelMean, quantizeRows } from "./quantize.js";
import type { Layout, Tensor } from "./tensor.js";

/**
 * How a cache keeps V: "f16"; or "int8", INT8 with one scale per token (per row of each batch entry and kv head,
 * defined in the header) — about half of V's bytes, so a decode step reads about a third fewer bytes, for a small
 * accuracy cost (measured in kv-cache-int8.test.ts).
 */
export type KvValueFormat = "f16" | "int8";
/** Every value format, "f16" (the default) first. */
export const KV_VALUE_FORMATS: readonly KvValueFormat[] = ["f16", "int8"];

/**
 * What a cache is made for: its sizes, the element type and layout of appended K/V, whether K is smoothed, and how V
 * is kept.
 */
export interface KvCacheSpec {
  readonly batch: number;
  readonly headsKv: number;
  readonly headDim: number;
  /** Most tokens per batch entry. */
  readonly capacity: number;
  /** Element type of appended K/V (queries may be any dtype the backend takes). */
  readonly dtype: DType;
  /** "HND": k/v appended as [B, Hkv, n, D]; "NHD": [B, n, Hkv, D]; queries and outputs too. */
  readonly layout: Layout;
  /** Subtract the mean of the first append's K (default true at the API). */
  readonly smoothK: boolean;
  /** How V is stored: "f16", or "int8" (INT8 with a scale per token; see the header). */
  readonly valueFormat: KvValueFormat;
}

/** A backend's cache. Core validates every argument first and tracks `length`. */
export interface BackendKvCache {
  /** Appends n ≥ 1 rows (k, v: [B, Hkv, n, D] in spec.layout, spec.dtype; host or this backend's device tensors). */
  readonly append: (k: Tensor, v: Tensor) => Effect.Effect<void, SageAttnError>;
  /**
   * Attention of q against the cache's `p.Nk` rows. `p` is a validated core `Problem` with Nk = length,
   * Hkv = spec.headsKv, no mask, no varlen, smoothK as the spec's.
   */
  readonly attend: (p: Problem, q: Tensor) => Effect.Effect<AttentionOutput, SageAttnError>;
  /**
   * `append` and `attend` run at once, throwing the tagged error: offered by a backend whose calls only enqueue
   * (cuda), so a decode step that repeats the previous one costs no Effect runtime.
   */
  readonly appendNow?: (k: Tensor, v: Tensor) => void;
  readonly attendNow?: (p: Problem, q: Tensor) => AttentionOutput;
  /** Re-centres K on the mean of every stored row and re-quantizes it (see `KvCacheReference.requantize`). */
  readonly requantize: Effect.Effect<void, SageAttnError>;
  readonly dispose: Effect.Effect<void>;
}

/** The host oracle of a cache: the contract's semantics on canonical f32 arrays, slow and exact to the spec. */
export interface KvCacheReference {
  readonly spec: KvCacheSpec;
  /** Rows appended per batch entry. */
  readonly length: number;
  /** Appends n rows: k, v canonical HND f32 [B, Hkv, n, D]. The caller checks the capacity. */
  append(k: Float32Array, v: Float32Array, n: number): void;
  /** `sageReference` of q (canonical HND f32 [B, Hq, Nq, D]) against the stored rows, with the cache's mean. */
  attend(p: Problem, q: Float32Array): Reference;
  /**
   * K̂ = Ki·sK + μ for rows of full blocks (the partial block: its raw rows + μ), μ' = the per-channel mean of K̂ over
   * every row (f64 sum, f32), then K̂ quantized afresh with μ'. Afterwards the cache equals one built by one append of K̂.
   */
  requantize(): void;
  /** The smoothing means, f32 [B, Hkv, D]. */
  mean(): Float32Array;
  /**
   * The stored K rows (K as appended, K̂ after a requantize) and V (as appended, or V̂ in an int8 cache), canonical HND
   * f32 [B, Hkv, length, D].
   */
  keys(): Float32Array;
  values(): Float32Array;
}

/** Makes an empty host oracle cache; its arrays grow as rows arrive (never past the capacity). */
export function kvCacheReference(spec: KvCacheSpec): KvCacheReference {
  const { batch: B, headsKv: H, headDim: D, capacity } = spec;
  const heads = B * H;
  let length = 0;
  let room = 0;
  let k = new Float32Array(0);
  let v = new Float32Array(0);
  let mean = new Float32Array(heads * D);

  // Rows are kept per head at a pitch of `room` rows, so a head's rows stay contiguous for quantizeRows.
  const grow = (need: number) => {
    if (need <= room) return;
    const next = Math.min(capacity, Math.max(need, room * 2, K_BLOCK));
    const nk = new Float32Array(heads * next * D);
    const nv = new Float32Array(heads * next * D);
    for (let h = 0; h < heads; h++) {
      nk.set(k.subarray(h * room * D, (h * room + length) * D), h * next * D);
      nv.set(v.subarray(h * room * D, (h * room + length) * D), h * next * D);
    }
    k = nk;
    v = nv;
    room = next;
  };
  // V as the cache keeps it: the rows as given, or V̂ = q·sV per row.
  const storedValues = (rows: Float32Array): Float32Array => {
    if (spec.valueFormat !== "int8") return rows;
    const n = rows.length / D;
    const { values, scales } = quantizeRows(rows, 0, n, D, 1);
    const out = new Float32Array(rows.length);
    for (let r = 0; r < n; r++) {
      for (let d = 0; d < D; d++) out[r * D + d] = values[r * D + d] * scales[r];
    }
    return out;
  };
  const packed = (src: Float32Array) => {
    const out = new Float32Array(heads * length * D);
    for (let h = 0; h < heads; h++) out.set(src.subarray(h * room * D, (h * room + length) * D), h * length * D);
    return out;
  };

  return {
    spec,
    get length() {
      return length;
    },
    append(kIn, vIn, n) {
      grow(length + n);
      for (let h = 0; h < heads; h++) {
        k.set(kIn.subarray(h * n * D, (h + 1) * n * D), (h * room + length) * D);
        v.set(storedValues(vIn.subarray(h * n * D, (h + 1) * n * D)), (h * room + length) * D);
      }
      if (length === 0 && spec.smoothK) {
        for (let h = 0; h < heads; h++) {
          mean.set(channelMean(kIn, h * n, n, D), h * D);
        }
      }
      length += n;
    },
    attend(p, q) {
      return sageReference({ ...p, Nk: length }, q, packed(k), packed(v), mean);
    },
    requantize() {
      if (length === 0) return;
      const full = Math.floor(length / K_BLOCK) * K_BLOCK;
      const next = new Float32Array(heads * D);
      for (let h = 0; h < heads; h++) {
        const mu = mean.subarray(h * D, (h + 1) * D);
        const row0 = h * room;
        const kq = quantizeRows(k, row0, length, D, K_BLOCK, 1, mu);
        for (let r = 0; r < length; r++) {
          for (let d = 0; d < D; d++) {
            const i = (row0 + r) * D + d;
            const centred = r < full
              ? Math.fround(kq.values[r * D + d] * kq.scales[Math.floor(r / K_BLOCK)])
              : Math.fround(k[i] - mu[d]);
            k[i] = Math.fround(centred + mu[d]);
          }
        }
        if (spec.smoothK) next.set(channelMean(k, row0, length, D), h * D);
      }
      mean = next;
    },
    mean: () => mean.slice(),
    keys: () => packed(k),
    values: () => packed(v),
  };
}
