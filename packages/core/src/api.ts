import { Cause, Effect, Exit, Fiber, Runtime } from "effect";
import { type AttentionBackend, type BackendName, pvOracleMode } from "./backend.js";
import { DeviceError, hostAllocationFailed, type SageAttnError } from "./errors.js";
import { deliver, deliverNow } from "./deliver.js";
import { exactReference } from "./oracle-exact.js";
import { type OptionsSnapshot, snapshotOf, unchangedSince } from "./options-snapshot.js";
import { type AttentionOptions, type Problem, resolveProblem, scanHost, valueLimit } from "./problem.js";
import {
  disposeBackends,
  isLoaded,
  loadBackend,
  type Rejection,
  selectBackend,
  synchronizeBackends,
} from "./registry.js";
import { type DeviceTensor, fromCanonicalF32, type HostTensor, type Tensor, toCanonicalF32 } from "./tensor.js";
import { scaledCopy, unscaleInPlace } from "./v-scale.js";

/** What a call returns: the output (host in → host out, device in → device out), the LSE if asked, and who ran it. */
export interface AttentionResult<T extends Tensor = Tensor> {
  readonly output: T;
  /** Natural-log LSE, f32 [B, Hq, Nq]. */
  readonly lse?: Float32Array;
  /** The backend that ran the call. */
  readonly backend: BackendName;
  /** Backends passed over before it, with the reason for each. */
  readonly rejected: readonly Rejection[];
}

/**
 * The last call made with an options object, when every tensor of it lived on a device: a loop that repeats a call
 * with the same tensors and an unchanged options object skips validation and selection. Nothing checked is skipped:
 * device tensors' values are never scanned, their shapes are fixed, and the backend still checks that each tensor is
 * alive. Calls with a mask or varlen (arrays the caller could change in place) are not remembered.
 */
interface Repeat {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly options: OptionsSnapshot;
  readonly problem: Problem;
  readonly backend: AttentionBackend;
  readonly rejected: readonly Rejection[];
}
const repeats = new WeakMap<AttentionOptions, Repeat>();

function repeatOf(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Repeat | undefined {
  const r = repeats.get(options);
  if (r === undefined || r.q !== q || r.k !== k || r.v !== v || !isLoaded(r.backend)) return undefined;
  return unchangedSince(r.options, options) ? r : undefined;
}

function remember(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: AttentionOptions,
  problem: Problem,
  backend: AttentionBackend,
  rejected: readonly Rejection[],
): void {
  const onDevice = q.kind === "device" && k.kind === "device" && v.kind === "device" &&
    (options.out === undefined || options.out.kind === "device");
  if (!onDevice || options.mask !== undefined || options.varlen !== undefined) return;
  repeats.set(options, {
    q,
    k,
    v,
    options: snapshotOf(options),
    problem,
    backend,
    rejected,
  });
}

/** SageAttention as an Effect: validates, selects a backend, runs it. */
// Chained with flatMap rather than Effect.gen: a generator costs a few µs per call, as much as a small GPU call.
export function attentionEffect<T extends Tensor>(
  q: T,
  k: T,
  v: T,
  options: AttentionOptions = {},
): Effect.Effect<AttentionResult<T>, SageAttnError> {
  const r = repeatOf(q, k, v, options);
  if (r !== undefined) return run(r.backend, r.problem, q, k, v, r.rejected);
  return Effect.flatMap(
    resolveProblem(q, k, v, options),
    (resolved) =>
      Effect.flatMap(selectBackend(resolved, options.backend, [q, k, v]), ({ backend, rejected }) => {
        const p = widenUnscanned(resolved, v, options, backend);
        remember(q, k, v, options, p, backend, rejected);
        const shift = p.vShift;
        if (!shift) return run(backend, p, q, k, v, rejected);
        // V too small for f16: the backend computes on V·2^shift, the output comes back times 2^-shift.
        const scaled = scaledCopy(v as HostTensor, shift) as T;
        return Effect.tap(
          run(backend, p, q, k, scaled, rejected),
          (r) => unscaleInPlace(r.output as HostTensor, shift),
        );
      }),
  );
}

/**
 * validate: false scanned nothing, so |v| is unknown. Where the chosen backend would sum P·V in f16 blocks (the
 * accumulation left to it), one max-only pass over a host V decides as the scanned path does: past 65504/64, f32 (a
 * finite V of 2000 came out inf). Device V is never scanned: there the caller vouches, or asks for "f32".
 */
function widenUnscanned(p: Problem, v: Tensor, options: AttentionOptions, backend: AttentionBackend): Problem {
  if (options.validate !== false || !p.pvAuto || v.kind !== "host") return p;
  if (pvOracleMode(backend.capabilities, "f16-block") !== "f16-block") return p;
  const maxV = scanHost(v, "v"); // a NaN or inf is the caller's (it propagates), not a reason to widen
  return typeof maxV === "number" && maxV > valueLimit("sage", "f16-block", p.outputDtype)
    ? { ...p, pvAccumulation: "f32" }
    : p;
}

function run<T extends Tensor>(
  backend: AttentionBackend,
  p: Problem,
  q: T,
  k: T,
  v: T,
  rejected: readonly Rejection[],
): Effect.Effect<AttentionResult<T>, SageAttnError> {
  return Effect.flatMap(
    backend.attention(p, q, k, v),
    (out) =>
      Effect.map(p.out ? deliver(p.out, out.output, backend.name) : Effect.succeed(out.output), (output) => ({
        output: output as T,
        lse: out.lse,
        backend: backend.name,
        rejected,
      })),
  );
}

/**
 * Runs an Effect as a Promise that rejects with the tagged error itself (not a wrapper). It starts synchronously:
 * a call whose backend is loaded and enqueues without waiting (cuda, webgpu) pays no scheduler round trip, which
 * is most of the host cost of a small device call; an effect that suspends finishes on its fiber as usual.
 */
export async function runToPromise<A>(effect: Effect.Effect<A, SageAttnError>): Promise<A> {
  let exit = Effect.runSyncExit(effect);
  if (Exit.isFailure(exit) && exit.cause._tag === "Die" && Runtime.isAsyncFiberException(exit.cause.defect)) {
    exit = await Effect.runPromise(Fiber.await(exit.cause.defect.fiber as Fiber.RuntimeFiber<A, SageAttnError>));
  }
  if (Exit.isSuccess(exit)) return exit.value;
  throw Cause.squash(exit.cause);
}

/**
 * SageAttention: INT8 Q·Kᵀ with K smoothing, FP16 P·V, on the best available backend.
 * Rejects with a tagged error (`InvalidInput`, `BackendUnavailable`, `DeviceError`, `NoBackend`).
 * @example
 * const q = hostTensor(new Float32Array(1 * 8 * 1024 * 64), [1, 8, 1024, 64]);
 * const { output, backend } = await attention(q, k, v, { causal: true });
 */
export function attention<T extends Tensor>(
  q: T,
  k: T,
  v: T,
  options: AttentionOptions = {},
): Promise<AttentionResult<T>> {
  const r = repeatOf(q, k, v, options);
  if (r?.backend.attentionNow !== undefined) {
    try {
      return Promise.resolve(runNow(r, q, k, v));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  return runToPromise(attentionEffect(q, k, v, options));
}

/** A repeated call on a backend that runs calls at once (`attentionNow`); throws the tagged error. */
function runNow<T extends Tensor>(r: Repeat, q: T, k: T, v: T): AttentionResult<T> {
  const out = r.backend.attentionNow!(r.problem, q, k, v);
  const output = r.problem.out === undefined ? out.output : deliverNow(r.problem.out, out.output, r.backend.name);
  if (output instanceof DeviceError) throw output;
  return { output: output as T, lse: out.lse, backend: r.backend.name, rejected: r.rejected };
}

/** Exact attention in float64 on the host (the accuracy reference), returned in the inputs' dtype and layout. */
export function exactAttentionEffect(
  q: HostTensor,
  k: HostTensor,
  v: HostTensor,
  options: AttentionOptions = {},
): Effect.Effect<AttentionResult<HostTensor>, SageAttnError> {
  return Effect.gen(function* () {
    const p = yield* resolveProblem(q, k, v, options, "exact");
    return yield* Effect.try({
      try: () => {
        const r = exactReference(p, toCanonicalF32(q), toCanonicalF32(k), toCanonicalF32(v));
        const output = fromCanonicalF32(
          Float32Array.from(r.output),
          { B: p.B, H: p.Hq, N: p.Nq, D: p.D },
          p.outputDtype,
          p.layout,
        );
        return {
          output,
          lse: p.returnLse ? Float32Array.from(r.lse) : undefined,
          backend: "js" as const,
          rejected: [],
        };
      },
      catch: (e) => hostAllocationFailed("js", e),
    });
  });
}

/** Exact attention in float64 on the host; see `exactAttentionEffect`. */
export function exactAttention(
  q: HostTensor,
  k: HostTensor,
  v: HostTensor,
  options: AttentionOptions = {},
): Promise<AttentionResult<HostTensor>> {
  return runToPromise(exactAttentionEffect(q, k, v, options));
}

/** The backend by name, loaded (or the reason it cannot be). */
export function getBackend(name: BackendName): Promise<AttentionBackend> {
  return runToPromise(loadBackend(name));
}

/** Copies a host tensor to a backend's device, where it stays between calls until disposed. */
export function upload(t: HostTensor, backend: BackendName): Promise<DeviceTensor> {
  return runToPromise(Effect.flatMap(loadBackend(backend), (b) => b.upload(t)));
}

/** Copies a device tensor back to the host. */
export function download(t: DeviceTensor): Promise<HostTensor> {
  return runToPromise(
    Effect.flatMap(
      loadBackend(t.backend),
      (b) =>
        b.capabilities.deviceTensors ? b.download(t) : Effect.fail(
          new DeviceError({ backend: b.name, reason: "KernelFailed", message: "backend keeps no device tensors" }),
        ),
    ),
  );
}

/**
 * Waits until every call queued on a backend has finished: the named one, the one a device tensor lives on, or
 * every loaded backend. Device calls return before the GPU is done; time or overlap work around this.
 */
export function synchronize(on?: BackendName | DeviceTensor): Promise<void> {
  if (on === undefined) return runToPromise(synchronizeBackends());
  const name = typeof on === "string" ? on : on.backend;
  return runToPromise(Effect.flatMap(loadBackend(name), (b) => b.synchronize));
}

/** Releases every backend's native resources (worker pools, GPU devices, libraries). Safe to call more than once. */
export function dispose(): Promise<void> {
  return Effect.runPromise(disposeBackends());
}
