import { Effect } from "effect";
import { QK_GRANULARITIES } from "./constants.js";
import { DTYPES } from "./dtype.js";
import type { AttentionBackend, AttentionOutput, BackendProvider } from "./backend.js";
import { DeviceError, hostAllocationFailed } from "./errors.js";
import { type BackendKvCache, KV_VALUE_FORMATS, kvCacheReference, type KvCacheSpec } from "./kv-cache.js";
import { exactReference, type Reference } from "./oracle-exact.js";
import { sageReference } from "./oracle-sage.js";
import { MAX_HEAD_DIM, type Problem } from "./problem.js";
import { fromCanonicalF32, type HostTensor, type Tensor, toCanonicalF32 } from "./tensor.js";

function run(
  reference: typeof sageReference,
  p: Problem,
  q: Tensor,
  k: Tensor,
  v: Tensor,
): Effect.Effect<AttentionOutput, DeviceError> {
  return Effect.suspend(() => {
    if (q.kind !== "host" || k.kind !== "host" || v.kind !== "host") return Effect.fail(hostOnly());
    return Effect.try({
      try: () => {
        const r: Reference = reference(p, toCanonicalF32(q), toCanonicalF32(k), toCanonicalF32(v));
        const output = fromCanonicalF32(
          Float32Array.from(r.output),
          { B: p.B, H: p.Hq, N: p.Nq, D: p.D },
          p.outputDtype,
          p.layout,
        );
        return p.returnLse ? { output, lse: Float32Array.from(r.lse) } : { output };
      },
      catch: (e) => hostAllocationFailed("js", e),
    });
  });
}

const hostOnly = () =>
  new DeviceError({ backend: "js", reason: "KernelFailed", message: "the js backend takes host tensors only" });

/** The js backend's cache: the oracle itself (`kvCacheReference`), fed canonical f32 copies of each append. */
function jsKvCache(spec: KvCacheSpec): BackendKvCache {
  const ref = kvCacheReference(spec);
  return {
    append: (k, v) =>
      Effect.suspend(() => {
        if (k.kind !== "host" || v.kind !== "host") return Effect.fail(hostOnly());
        const n = k.layout === "HND" ? k.shape[2] : k.shape[1];
        return Effect.try({
          try: () => ref.append(toCanonicalF32(k), toCanonicalF32(v), n),
          catch: (e) => hostAllocationFailed("js", e),
        });
      }),
    attend: (p, q) =>
      Effect.suspend(() => {
        if (q.kind !== "host") return Effect.fail(hostOnly());
        return Effect.try({
          try: () => {
            const r = ref.attend(p, toCanonicalF32(q));
            const output = fromCanonicalF32(
              Float32Array.from(r.output),
              { B: p.B, H: p.Hq, N: p.Nq, D: p.D },
              p.outputDtype,
              p.layout,
            );
            return p.returnLse ? { output, lse: Float32Array.from(r.lse) } : { output };
          },
          catch: (e) => hostAllocationFailed("js", e),
        });
      }),
    requantize: Effect.try({ try: () => ref.requantize(), catch: (e) => hostAllocationFailed("js", e) }),
    dispose: Effect.void,
  };
}

/** The TypeScript oracle as a backend: always available, slow; the last fallback and the reference for tests. */
export const jsBackend: AttentionBackend = {
  name: "js",
  capabilities: {
    dtypes: DTYPES,
    maxHeadDim: MAX_HEAD_DIM,
    causal: true,
    lse: true,
    mask: true,
    varlen: true,
    deviceTensors: false,
    exactKernel: true,
    kvCache: true,
    pv: ["f16-block", "f32", "fp8", "int8"],
    qkGranularity: QK_GRANULARITIES,
    kvValueFormats: KV_VALUE_FORMATS,
  },
  device: "JavaScript (scalar, float64 emulation)",
  details: { kind: "reference implementation" },
  upload: (t: HostTensor) =>
    Effect.fail(
      new DeviceError({
        backend: "js",
        reason: "KernelFailed",
        message: `the js backend has no device memory (tensor ${t.shape.join("×")})`,
      }),
    ),
  download: () =>
    Effect.fail(
      new DeviceError({ backend: "js", reason: "KernelFailed", message: "the js backend has no device memory" }),
    ),
  attention: (p, q, k, v) => run(sageReference, p, q, k, v),
  exactAttention: (p, q, k, v) => run(exactReference, p, q, k, v),
  synchronize: Effect.void,
  kvCache: (spec) => Effect.sync(() => jsKvCache(spec)),
  dispose: Effect.void,
};

export const jsProvider: BackendProvider = { name: "js", priority: 0, load: Effect.succeed(jsBackend) };
