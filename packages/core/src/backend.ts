import { Context, Effect, Layer } from "effect";
import type { PvAccumulation, PvMode, QkGranularity } from "./constants.js";
import type { DType } from "./dtype.js";
import type { BackendUnavailable, InvalidInput, SageAttnError } from "./errors.js";
import type { BackendKvCache, KvCacheSpec, KvValueFormat } from "./kv-cache.js";
import type { Problem } from "./problem.js";
import type { DeviceTensor, HostTensor, Tensor } from "./tensor.js";

/** Backend names, in the order auto-selection prefers them. */
export type BackendName = "cuda" | "webgpu" | "cpu-simd" | "js" | (string & {});

/** What a backend can serve; selection passes over a backend that lacks what a call asks for. */
export interface Capabilities {
  readonly dtypes: readonly DType[];
  readonly maxHeadDim: number;
  readonly causal: boolean;
  readonly lse: boolean;
  readonly mask: boolean;
  readonly varlen: boolean;
  /** upload/download keep tensors on the backend's device between calls. */
  readonly deviceTensors: boolean;
  /** The backend also has an exact (unquantized) kernel on the same engine, for baselines. */
  readonly exactKernel: boolean;
  /** The backend keeps a quantized KV cache for decode (`kvCache` is present). */
  readonly kvCache: boolean;
  /**
   * How P·V is computed: the `pvAccumulation` modes the backend honours, or ["fixed16"] for a backend that ignores
   * the option (cpu-simd). Absent means ["f16-block", "f32"]. The conformance suite holds the backend to the oracle
   * of the mode it runs (`pvOracleMode`).
   */
  readonly pv?: readonly PvMode[];
  /**
   * The `qkGranularity` values the backend honours; every backend has "block", "warp" only where it quantizes per 16.
   * Absent (a backend written before the option): "block" only.
   */
  readonly qkGranularity?: readonly QkGranularity[];
  /** The KV cache's `valueFormat`s the backend keeps. Absent (a backend written before int8 values): ["f16"] only. */
  readonly kvValueFormats?: readonly KvValueFormat[];
}

/** The P·V modes `caps` declares (["f16-block", "f32"] where it declares none). */
export const pvModes = (caps: Capabilities): readonly PvMode[] => caps.pv ?? ["f16-block", "f32"];
/** The Q/K granularities a backend honours ("block" where it does not say). */
export const qkGranularities = (caps: Capabilities): readonly QkGranularity[] => caps.qkGranularity ?? ["block"];
/** The KV cache value formats a backend keeps ("f16" only where it does not say). */
export const kvValueFormats = (caps: Capabilities): readonly KvValueFormat[] => caps.kvValueFormats ?? ["f16"];

/**
 * The sage-oracle variant a backend with `caps` must track when asked for `requested`: the requested one where it
 * honours it; fixed point ("fixed16") tracks the f32 oracle (its int32 sums round nothing between blocks). "fp8" and
 * "int8" are never substituted: a backend without them is passed over (`unsupportedBy`), so each maps only to itself.
 */
export function pvOracleMode(caps: Capabilities, requested: PvAccumulation): PvAccumulation {
  const modes = pvModes(caps);
  if (modes.includes(requested) || requested === "fp8" || requested === "int8") return requested;
  return modes.includes("f32") || modes.includes("fixed16") ? "f32" : "f16-block";
}

/** Output of one call: the output tensor (host in → host out, device in → device out) and the LSE if asked. */
export interface AttentionOutput {
  readonly output: Tensor;
  /** Natural-log LSE, f32 [B, Hq, Nq] (or [1, Hq, totalQ] with varlen). */
  readonly lse?: Float32Array;
}

/** The contract every backend fulfils. Core validates inputs before any of these run. */
export interface AttentionBackend {
  readonly name: BackendName;
  readonly capabilities: Capabilities;
  /** One line naming the device the backend runs on (CPU model, GPU adapter, …). */
  readonly device: string;
  /**
   * Anything else worth showing in `sageattn info` (features, limits, variant). `software: "true"` marks a
   * software (CPU-emulated) device, e.g. a fallback WebGPU adapter: auto-selection then ranks it at SOFTWARE_PRIORITY.
   */
  readonly details: Readonly<Record<string, string>>;
  readonly upload: (t: HostTensor) => Effect.Effect<DeviceTensor, SageAttnError>;
  readonly download: (t: DeviceTensor) => Effect.Effect<HostTensor, SageAttnError>;
  /**
   * SageAttention on a validated problem. With `p.out` a backend writes into it and returns it; a host backend may
   * instead return its own tensor, which core then copies into `p.out`.
   */
  readonly attention: (p: Problem, q: Tensor, k: Tensor, v: Tensor) => Effect.Effect<AttentionOutput, SageAttnError>;
  /**
   * Optional: `attention` run at once, returning its output or throwing its tagged error, for a backend whose calls
   * only enqueue work (cuda). Core takes it for a call that repeats the previous one with the same options object, to
   * spend no scheduler or Effect runtime on a steady-state loop (packages/backend-cuda/NOTES.md, "Host cost per
   * call").
   */
  readonly attentionNow?: (p: Problem, q: Tensor, k: Tensor, v: Tensor) => AttentionOutput;
  /** Waits until every call queued on the backend has finished (device tensors returned earlier are then ready). */
  readonly synchronize: Effect.Effect<void, SageAttnError>;
  /** Exact attention on the same engine (present when capabilities.exactKernel). */
  readonly exactAttention?: (
    p: Problem,
    q: Tensor,
    k: Tensor,
    v: Tensor,
  ) => Effect.Effect<AttentionOutput, SageAttnError>;
  /** A quantized KV cache on this backend (present when capabilities.kvCache); core validates the spec first. */
  readonly kvCache?: (spec: KvCacheSpec) => Effect.Effect<BackendKvCache, SageAttnError>;
  /** Releases every native resource the backend holds. */
  readonly dispose: Effect.Effect<void>;
}

/** The backend service, for programs that compose with Effect layers. */
export class AttentionBackendService
  extends Context.Tag("@sageattn/core/AttentionBackend")<AttentionBackendService, AttentionBackend>() {}

/** A backend's own options, passed through `loadBackend(name, options)` (e.g. cpu-simd's `{ threads: 2 }`). */
export type BackendOptions = Readonly<Record<string, unknown>>;

/** How a backend package makes itself known: a name, a priority and a way to load it. */
export interface BackendProvider {
  readonly name: BackendName;
  /** Higher is preferred: cuda 300, webgpu 200, cpu-simd 100, js 0. */
  readonly priority: number;
  readonly load: Effect.Effect<AttentionBackend, BackendUnavailable>;
  /**
   * Loads the backend with options (checked by the backend: an unknown or bad one is InvalidInput InvalidOption).
   * Absent where the backend takes none. Apps reach it through `loadBackend(name, options)`.
   */
  readonly configure?: (options: BackendOptions) => Effect.Effect<AttentionBackend, BackendUnavailable | InvalidInput>;
}

/** Where a backend on a software device ranks: below cpu-simd (100), above the js oracle (0). */
export const SOFTWARE_PRIORITY = 50;

/** The backend computes on a software (CPU-emulated) device. */
export const isSoftware = (b: AttentionBackend): boolean => b.details.software === "true";

/** A layer providing a provider's backend, disposed when the layer's scope closes. */
export const layerFrom = (provider: BackendProvider): Layer.Layer<AttentionBackendService, BackendUnavailable> =>
  Layer.scoped(AttentionBackendService, Effect.acquireRelease(provider.load, (b) => b.dispose));

/** Why `caps` cannot serve `p`, or undefined when it can. */
export function unsupportedBy(caps: Capabilities, p: Problem): string | undefined {
  if (!caps.dtypes.includes(p.dtype)) return `dtype ${p.dtype} not supported`;
  if (!caps.dtypes.includes(p.outputDtype)) return `output dtype ${p.outputDtype} not supported`;
  if (p.D > caps.maxHeadDim) return `head dim ${p.D} over its maximum ${caps.maxHeadDim}`;
  if (p.causal && !caps.causal) return "causal not supported";
  if (p.returnLse && !caps.lse) return "LSE not supported";
  if (p.mask && !caps.mask) return "masks not supported";
  if (p.varlen && !caps.varlen) return "varlen not supported";
  // fp8 and int8 P·V and the finer granularities change the numbers, not only the speed: no backend may quietly
  // substitute another mode.
  for (const mode of ["fp8", "int8"] as const) {
    if (p.pvAccumulation === mode && !pvModes(caps).includes(mode)) return `${mode} P·V (pvAccumulation) not supported`;
  }
  if (!qkGranularities(caps).includes(p.qkGranularity)) return `qkGranularity "${p.qkGranularity}" not supported`;
  return undefined;
}

/** Why a backend cannot keep a cache for `spec`, or undefined when it can. */
export function kvCacheUnsupportedBy(b: AttentionBackend, spec: KvCacheSpec): string | undefined {
  if (!b.capabilities.kvCache || !b.kvCache) return "no KV cache";
  if (!b.capabilities.dtypes.includes(spec.dtype)) return `dtype ${spec.dtype} not supported`;
  if (spec.headDim > b.capabilities.maxHeadDim) {
    return `head dim ${spec.headDim} over its maximum ${b.capabilities.maxHeadDim}`;
  }
  // int8 values change the numbers, not only the bytes: a backend without them is passed over, never substituted.
  if (!kvValueFormats(b.capabilities).includes(spec.valueFormat)) {
    return `${spec.valueFormat} values (valueFormat) not supported`;
  }
  return undefined;
}
