import { Effect } from "effect";
import { type AttentionResult, runToPromise } from "./api.js";
import type { AttentionBackend, BackendName } from "./backend.js";
import { deliver, deliverNow } from "./deliver.js";
import { type DType, DTYPES, F16_MAX } from "./dtype.js";
import { DeviceError, invalid, InvalidInput, type SageAttnError } from "./errors.js";
import { type BackendKvCache, KV_VALUE_FORMATS, type KvCacheSpec, type KvValueFormat } from "./kv-cache.js";
import { suggestOption } from "./option-names.js";
import { type OptionsSnapshot, snapshotOf, unchangedSince } from "./options-snapshot.js";
import {
  checkBackendName,
  checkRanges,
  checkTensor,
  LOGIT_LIMIT,
  MAX_HEAD_DIM,
  type Problem,
  resolveProblem,
  scanHost,
  valueLimit,
} from "./problem.js";
import { type Rejection, selectKvCacheBackend } from "./registry.js";
import { contiguousStrides, type DeviceTensor, dims, type Layout, shapeFor, type Tensor } from "./tensor.js";
import { V_SCALE_BELOW } from "./v-scale.js";

/** What `createKvCache` makes: sizes, the element type and layout of appended K/V, smoothing, and where it lives. */
export interface KvCacheOptions {
  readonly batch: number;
  readonly headsKv: number;
  readonly headDim: number;
  /** Most tokens per batch entry. */
  readonly capacity: number;
  /** Element type of appended K/V; "f16" by default. */
  readonly dtype?: DType;
  /** "HND" (default): k/v [B, Hkv, n, D], q [B, Hq, Nq, D]; "NHD": [B, n, Hkv, D] and [B, Nq, Hq, D]. */
  readonly layout?: Layout;
  /** Smooth K by the mean of the first append (default true). */
  readonly smoothK?: boolean;
  /**
   * How the cache keeps V: "f16" (default), or "int8": INT8 with one scale per token, about half of V's bytes, so a
   * decode step reads about a third fewer bytes, for a small accuracy cost (docs/DESIGN.md §2, "Decode", has the
   * numbers). A backend without it (cpu-simd, webgpu) fails with BackendUnavailable (Unsupported) when named, and is
   * passed over by auto-selection.
   */
  readonly valueFormat?: KvValueFormat;
  /** Keep the cache on this backend (else `SAGEATTN_BACKEND`, else the best available with a KV cache). */
  readonly backend?: string;
}

/** Options of one `attend`; as `attention`'s, without mask, varlen, smoothK and backend (the cache fixes those). */
export interface AttendOptions {
  readonly causal?: boolean;
  readonly smScale?: number;
  readonly returnLse?: boolean;
  readonly out?: Tensor;
  readonly outputDtype?: DType;
  readonly pvAccumulation?: "f16-block" | "f32";
  readonly validate?: boolean;
}

/** A quantized KV cache on one backend: append rows, attend queries against every row so far. */
export interface KvCache {
  readonly backend: BackendName;
  /** Rows appended per batch entry. */
  readonly length: number;
  readonly capacity: number;
  /** Appends n ≥ 1 rows: k and v [B, Hkv, n, D] (in the cache's layout and dtype). */
  append(k: Tensor, v: Tensor): Promise<void>;
  /** SageAttention of q [B, Hq, Nq, D] (Hq a multiple of Hkv) against the cache's rows, K smoothed by the cache's mean. */
  attend(q: Tensor, options?: AttendOptions): Promise<AttentionResult>;
  /** Re-centres K on the mean of every stored row and quantizes it afresh (worth it when K drifts from the prefill). */
  requantize(): Promise<void>;
  /** Releases the cache's memory; any later call fails with DeviceError (Disposed). Safe to call twice. */
  dispose(): Promise<void>;
}

const SPEC_OPTIONS = [
  "batch",
  "headsKv",
  "headDim",
  "capacity",
  "dtype",
  "layout",
  "smoothK",
  "valueFormat",
  "backend",
] as const satisfies readonly (keyof KvCacheOptions)[];
const ATTEND_OPTIONS = [
  "causal",
  "smScale",
  "returnLse",
  "out",
  "outputDtype",
  "pvAccumulation",
  "validate",
] as const satisfies readonly (keyof AttendOptions)[];

function unknownOption(o: object, known: readonly string[], what: string): InvalidInput | undefined {
  for (const name of Object.keys(o)) {
    if (known.includes(name)) continue;
    const hint = suggestOption(name);
    return invalid(
      "InvalidOption",
      `${what} has no option ${JSON.stringify(name)}${
        hint && known.includes(hint) ? `; did you mean ${JSON.stringify(hint)}?` : ""
      }`,
    );
  }
  return undefined;
}

/** The options as a validated spec, or why they are not one. */
export function resolveKvCacheSpec(o: KvCacheOptions): InvalidInput | KvCacheSpec {
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    return invalid("InvalidOption", "createKvCache takes an options object { batch, headsKv, headDim, capacity, … }");
  }
  const unknown = unknownOption(o, SPEC_OPTIONS, "createKvCache");
  if (unknown) return unknown;
  for (const name of ["batch", "headsKv", "capacity"] as const) {
    if (!Number.isSafeInteger(o[name]) || o[name] <= 0) {
      return invalid("InvalidShape", `${name} must be a positive integer, got ${String(o[name])}`);
    }
  }
  if (!Number.isSafeInteger(o.headDim) || o.headDim <= 0 || o.headDim > MAX_HEAD_DIM) {
    return invalid("InvalidHeadDim", `headDim must be an integer in 1..${MAX_HEAD_DIM}, got ${String(o.headDim)}`);
  }
  if (!Number.isSafeInteger(o.batch * o.headsKv * o.capacity * o.headDim)) {
    return invalid(
      "InvalidShape",
      `a cache of ${o.batch}×${o.headsKv}×${o.capacity}×${o.headDim} elements overflows an index`,
    );
  }
  const dtype = o.dtype ?? "f16";
  if (!(DTYPES as readonly unknown[]).includes(dtype)) {
    return invalid("DTypeMismatch", `dtype must be f32, f16 or bf16, got ${JSON.stringify(dtype)}`);
  }
  const layout = o.layout ?? "HND";
  if (layout !== "HND" && layout !== "NHD") {
    return invalid("LayoutMismatch", `layout must be "HND" or "NHD", got ${JSON.stringify(layout)}`);
  }
  if (o.smoothK !== undefined && typeof o.smoothK !== "boolean") {
    return invalid("InvalidOption", `smoothK must be true or false, got ${JSON.stringify(o.smoothK)}`);
  }
  const valueFormat = o.valueFormat ?? "f16";
  if (!(KV_VALUE_FORMATS as readonly unknown[]).includes(valueFormat)) {
    return invalid(
      "InvalidOption",
      `valueFormat must be ${KV_VALUE_FORMATS.map((f) => JSON.stringify(f)).join(" or ")}, got ${
        JSON.stringify(valueFormat)
      }`,
    );
  }
  const badName = checkBackendName(o.backend);
  if (badName) return badName;
  return {
    batch: o.batch,
    headsKv: o.headsKv,
    headDim: o.headDim,
    capacity: o.capacity,
    dtype,
    layout,
    smoothK: o.smoothK ?? true,
    valueFormat,
  };
}

function onOtherBackend(t: Tensor, name: string, backend: string): InvalidInput | undefined {
  return t.kind === "device" && t.backend !== backend
    ? invalid("InvalidOption", `${name} lives on ${t.backend}, the cache on ${backend}`)
    : undefined;
}

/** Checks one append against the spec and the cache's room; returns its row count and the largest |k| and |v|. */
export function checkAppend(
  spec: KvCacheSpec,
  backend: string,
  length: number,
  k: Tensor,
  v: Tensor,
): InvalidInput | { n: number; maxK: number; maxV: number } {
  const bad = checkTensor(k, "k") ?? checkTensor(v, "v") ?? onOtherBackend(k, "k", backend) ??
    onOtherBackend(v, "v", backend);
  if (bad) return bad;
  for (const [t, name] of [[k, "k"], [v, "v"]] as const) {
    if (t.dtype !== spec.dtype) return invalid("DTypeMismatch", `${name} is ${t.dtype}, the cache holds ${spec.dtype}`);
    if (t.layout !== spec.layout) {
      return invalid("LayoutMismatch", `${name} has layout ${t.layout}, the cache ${spec.layout}`);
    }
    const d = dims(t);
    if (d.B !== spec.batch || d.H !== spec.headsKv || d.D !== spec.headDim) {
      return invalid(
        "InvalidShape",
        `${name} has [B=${d.B}, H=${d.H}, D=${d.D}], the cache [B=${spec.batch}, Hkv=${spec.headsKv}, D=${spec.headDim}]`,
      );
    }
  }
  const n = dims(k).N;
  if (dims(v).N !== n) return invalid("InvalidShape", `k holds ${n} rows, v ${dims(v).N}`);
  if (length + n > spec.capacity) {
    return invalid(
      "OutOfRange",
      `appending ${n} rows to a cache of length ${length} passes its capacity ${spec.capacity}; nothing was appended`,
    );
  }
  const maxK = scanHost(k, "k");
  if (typeof maxK !== "number") return maxK;
  const maxV = scanHost(v, "v");
  if (typeof maxV !== "number") return maxV;
  if (2 * maxK > LOGIT_LIMIT) {
    return invalid("OutOfRange", `k holds |k| = ${maxK}, beyond what f32 logits can hold after smoothing`);
  }
  if (maxV > F16_MAX) {
    return invalid("OutOfRange", `v holds |v| = ${maxV}, over the f16 range P·V rounds V to (${F16_MAX})`);
  }
  return { n, maxK, maxV };
}

/** A tensor with a shape and nothing else: stands for the cache's K/V when core resolves an attend's problem. */
function shapeOnly(spec: KvCacheSpec, length: number, dtype: DType): DeviceTensor {
  const shape = shapeFor(spec.layout, { B: spec.batch, H: spec.headsKv, N: length, D: spec.headDim });
  return {
    kind: "device",
    backend: "kv-cache",
    dtype,
    layout: spec.layout,
    shape,
    strides: contiguousStrides(shape),
    handle: undefined,
    dispose: () => {},
  };
}

/** Resolves an attend into a core Problem (Nk = length), with the value ranges of the rows appended so far. */
export function resolveAttend(
  spec: KvCacheSpec,
  backend: string,
  length: number,
  range: { maxK: number; maxV: number },
  q: Tensor,
  o: AttendOptions = {},
): Effect.Effect<Problem, InvalidInput> {
  return Effect.suspend(() => {
    if (typeof o !== "object" || o === null || Array.isArray(o)) {
      return Effect.fail(invalid("InvalidOption", `attend options must be an object`));
    }
    const bad = unknownOption(o, ATTEND_OPTIONS, "attend") ?? checkTensor(q, "q") ?? onOtherBackend(q, "q", backend);
    if (bad) return Effect.fail(bad);
    // The caches' quantized rows are defined for f16 P·V only (docs/DESIGN.md §2 step 5): fp8 and int8 are
    // attention()'s alone.
    const pv = o.pvAccumulation as string | undefined;
    if (pv === "fp8" || pv === "int8") {
      return Effect.fail(invalid("InvalidOption", `attend takes pvAccumulation "f16-block" or "f32", not "${pv}"`));
    }
    if (q.layout !== spec.layout) {
      return Effect.fail(invalid("LayoutMismatch", `q has layout ${q.layout}, the cache ${spec.layout}`));
    }
    const d = dims(q);
    if (d.B !== spec.batch || d.D !== spec.headDim || d.H % spec.headsKv !== 0) {
      return Effect.fail(
        invalid(
          "InvalidShape",
          `q has [B=${d.B}, H=${d.H}, D=${d.D}]; the cache needs B=${spec.batch}, D=${spec.headDim} and H a multiple of ${spec.headsKv}`,
        ),
      );
    }
    if (length === 0) return Effect.fail(invalid("InvalidShape", "attend on an empty cache: append rows first"));
    if ((spec.valueFormat ?? "f16") === "f16" && range.maxV > 0 && range.maxV < V_SCALE_BELOW) {
      // attention scales such a V around the call (v-scale.ts); the cache already holds it in f16, precision lost.
      return Effect.fail(
        invalid(
          "OutOfRange",
          `the cache's V peaks at |v| = ${range.maxV}, under 2^-6: kept in f16, it has lost its precision (f16 runs ` +
            `out below 2^-14); append V times a power of two and scale the output back, or use valueFormat "int8" ` +
            `where the backend has it`,
        ),
      );
    }
    const kv = shapeOnly(spec, length, q.dtype);
    return Effect.flatMap(resolveProblem(q, kv, kv, { ...o, smoothK: spec.smoothK }), (p) => {
      // The cache knows |v| from its appends (resolveProblem sees only the shapes), so an accumulation left out
      // widens f16 blocks to f32 where they would overflow, with validate on or off.
      const widen = range.maxV > valueLimit("sage", "f16-block", p.outputDtype);
      const pvAccumulation = o.pvAccumulation ?? (widen ? "f32" : "f16-block");
      if (o.validate === false) return Effect.succeed({ ...p, pvAccumulation });
      const maxQ = scanHost(q, "q");
      if (typeof maxQ !== "number") return Effect.fail(maxQ);
      const resolved: Problem = { ...p, pvAccumulation, validated: q.kind === "host" };
      const e = checkRanges(resolved, maxQ, range.maxK, range.maxV, "sage");
      return e ? Effect.fail(e) : Effect.succeed(resolved);
    });
  });
}

const disposed = (backend: string) =>
  new DeviceError({ backend, reason: "Disposed", message: "this KV cache was disposed" });

/** An attend's options object when none is given (the key of its remembered problem). */
const NO_OPTIONS: AttendOptions = {};

/**
 * The problem of the previous attend made with an options object, when q lived on a device: a decode loop that
 * repeats it with the same q and an unchanged options object skips validation (device values are never scanned) and
 * only moves Nk to the new length. The value ranges of the appended rows are part of the key (they decide P·V).
 */
interface Repeat {
  readonly q: Tensor;
  readonly options: OptionsSnapshot;
  readonly maxK: number;
  readonly maxV: number;
  readonly problem: Problem;
}

/** Wraps a backend's cache with core's validation, length tracking and one-call-at-a-time ordering. */
function wrap(
  spec: KvCacheSpec,
  backend: AttentionBackend,
  cache: BackendKvCache,
  rejected: readonly Rejection[],
): KvCache {
  let length = 0;
  let gone = false;
  const range = { maxK: 0, maxV: 0 };
  let tail: Promise<unknown> = Promise.resolve();
  let pending = 0;
  // Calls run in the order they were made, each after the previous one settled (appends change what attend sees).
  // With nothing pending a call starts at once: a backend that only enqueues (cuda) then costs no scheduler hop.
  const inOrder = <A>(effect: () => Effect.Effect<A, SageAttnError>): Promise<A> => {
    const start = () => runToPromise(Effect.suspend(() => (gone ? Effect.fail(disposed(backend.name)) : effect())));
    const run = pending === 0 ? start() : tail.then(start);
    pending++;
    tail = run.then(
      () => void pending--,
      () => void pending--,
    );
    return run;
  };
  const repeats = new WeakMap<AttendOptions, Repeat>();
  const repeatOf = (q: Tensor, options: AttendOptions): Problem | undefined => {
    const r = repeats.get(options);
    if (r === undefined || r.q !== q || r.maxK !== range.maxK || r.maxV !== range.maxV) return undefined;
    if (!unchangedSince(r.options, options)) return undefined;
    return r.problem.Nk === length ? r.problem : { ...r.problem, Nk: length };
  };
  const remember = (q: Tensor, options: AttendOptions, p: Problem) => {
    if (q.kind !== "device" || (options.out !== undefined && options.out.kind !== "device")) return;
    repeats.set(options, {
      q,
      options: snapshotOf(options),
      maxK: range.maxK,
      maxV: range.maxV,
      problem: p,
    });
  };
  const appended = (checked: { n: number; maxK: number; maxV: number }) => {
    length += checked.n;
    range.maxK = Math.max(range.maxK, checked.maxK);
    range.maxV = Math.max(range.maxV, checked.maxV);
  };
  // The repeated attend's result, at once (a remembered problem's `out` is a device tensor written in place).
  const resultNow = (p: Problem, out: { output: Tensor; lse?: Float32Array }): AttentionResult => {
    const output = p.out === undefined ? out.output : deliverNow(p.out, out.output, backend.name);
    if (output instanceof DeviceError) throw output;
    return { output, lse: out.lse, backend: backend.name, rejected };
  };
  const result = (p: Problem, out: { output: Tensor; lse?: Float32Array }) =>
    Effect.map(
      p.out ? deliver(p.out, out.output, backend.name) : Effect.succeed(out.output),
      (output) => ({ output, lse: out.lse, backend: backend.name, rejected }),
    );
  return {
    backend: backend.name,
    get length() {
      return length;
    },
    capacity: spec.capacity,
    append: (k, v) => {
      // Nothing pending and a backend that only enqueues: the append runs now, without the Effect runtime.
      if (pending === 0 && !gone && cache.appendNow !== undefined) {
        try {
          const checked = checkAppend(spec, backend.name, length, k, v);
          if (checked instanceof InvalidInput) return Promise.reject(checked);
          cache.appendNow(k, v);
          appended(checked);
          return Promise.resolve();
        } catch (e) {
          return Promise.reject(e);
        }
      }
      return inOrder(() => {
        const checked = checkAppend(spec, backend.name, length, k, v);
        if (checked instanceof InvalidInput) return Effect.fail(checked);
        return Effect.map(cache.append(k, v), () => appended(checked));
      });
    },
    attend: (q, options) => {
      const key = options ?? NO_OPTIONS;
      // A repeated attend with nothing pending on a backend that only enqueues runs now (the decode loop's step).
      if (pending === 0 && !gone && cache.attendNow !== undefined && length > 0) {
        const again = repeatOf(q, key);
        if (again !== undefined) {
          try {
            return Promise.resolve(resultNow(again, cache.attendNow(again, q)));
          } catch (e) {
            return Promise.reject(e);
          }
        }
      }
      return inOrder(() => {
        const again = length > 0 ? repeatOf(q, key) : undefined;
        if (again !== undefined) return Effect.flatMap(cache.attend(again, q), (out) => result(again, out));
        return Effect.flatMap(resolveAttend(spec, backend.name, length, range, q, options), (p) => {
          remember(q, key, p);
          return Effect.flatMap(cache.attend(p, q), (out) => result(p, out));
        });
      });
    },
    requantize: () => inOrder(() => cache.requantize),
    dispose: () => {
      if (gone) return tail.then(() => undefined);
      const run = tail.then(() => {
        gone = true;
        return Effect.runPromise(cache.dispose);
      });
      pending++;
      tail = run.then(
        () => void pending--,
        () => void pending--,
      );
      return run;
    },
  };
}

/** `createKvCache` as an Effect: validates the options, picks a backend with a KV cache, makes an empty cache there. */
export function kvCacheEffect(options: KvCacheOptions): Effect.Effect<KvCache, SageAttnError> {
  return Effect.suspend(() => {
    const spec = resolveKvCacheSpec(options);
    if (spec instanceof InvalidInput) return Effect.fail(spec);
    return Effect.flatMap(
      selectKvCacheBackend(spec, options.backend),
      ({ backend, rejected }) => Effect.map(backend.kvCache!(spec), (cache) => wrap(spec, backend, cache, rejected)),
    );
  });
}

/**
 * A quantized KV cache for decode: K smoothed by its first append's mean and kept INT8 in 64-row blocks, V in f16
 * (or, with `valueFormat: "int8"`, INT8 with a scale per token).
 * @example
 * const cache = await createKvCache({ batch: 1, headsKv: 8, headDim: 128, capacity: 4096 });
 * await cache.append(kPrompt, vPrompt);                 // prefill: [1, 8, n, 128]
 * const { output } = await cache.attend(q, { causal: true }); // q: [1, 32, 1, 128]
 * await cache.append(kNew, vNew);                       // one row per generated token
 */
export function createKvCache(options: KvCacheOptions): Promise<KvCache> {
  return runToPromise(kvCacheEffect(options));
}
