import {
  type AttentionBackend,
  type AttentionOutput,
  type BackendOptions,
  BackendUnavailable,
  DeviceError,
  DTYPES,
  type HostTensor,
  hostTensor,
  invalid,
  type InvalidInput,
  LOG2E,
  MAX_HEAD_DIM,
  type Problem,
  resolveProblem,
  type Tensor,
} from "@sageattn/core";
import { Effect } from "effect";
import { type Build, chooseBuild, choosePrecompiled, COUNTER_AT, Engine, type PrecompiledModule } from "./engine.js";
import { probeFeatures } from "./features.js";
import { readCanonical, touchedOutput, writeCanonical } from "./io.js";
import { makeKvCache, SPLIT_BLOCKS } from "./kv-cache.js";
import { poisonNonFinite } from "./poison.js";
import { type Plan, planCall, planLimit, writeRecords } from "./plan.js";
import { WorkerPool, workersAvailable } from "./pool.js";
import type { TaskKind } from "./records.js";

const NAME = "cpu-simd";

/**
 * Calls with less work than this (flops, 4·Nq·Nk·D per head) run on the calling thread alone: waking workers
 * costs tens of microseconds. Measured on the dev box (Node 20): threads pay off from about 4 MFLOP.
 */
const MIN_THREADED_FLOPS = 4e6;

export interface CpuSimdOptions {
  /** Threads including the caller (default: the hardware's, at most 16); 1 runs everything on the caller. */
  readonly threads?: number;
  /** Force a build (tests compare them); default: relaxed SIMD where it validates, else SIMD128. */
  readonly build?: Build;
  /** Modules compiled ahead (the package's wasm/*.wasm files), for runtimes that refuse to compile at run time. */
  readonly modules?: readonly PrecompiledModule[];
  /** Key blocks per split task of a KV cache's attend (default SPLIT_BLOCKS); tests lower it to exercise the merge. */
  readonly decodeSplitBlocks?: number;
}

/** The backend with two probes for tests and benchmarks. */
export interface CpuSimdBackend extends AttentionBackend {
  /** Bytes of wasm memory in use (it grows to the largest call's need and stays there). */
  readonly wasmMemoryBytes: () => number;
  /** Threads a large call runs on, the caller included. */
  readonly threads: number;
}

function hardwareThreads(): number {
  const g = globalThis as { navigator?: { hardwareConcurrency?: number } };
  const n = g.navigator?.hardwareConcurrency;
  if (typeof n === "number" && n > 0) return n;
  return 1;
}

async function nodeThreads(): Promise<number | undefined> {
  const g = globalThis as { process?: { versions?: { node?: string } } };
  if (!g.process?.versions?.node) return undefined;
  try {
    const name = "node:os";
    const os = (await import(/* @vite-ignore */ name)) as typeof import("node:os");
    return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  } catch {
    return undefined;
  }
}

async function cpuName(): Promise<string> {
  const g = globalThis as { process?: { versions?: { node?: string } } };
  if (g.process?.versions?.node) {
    try {
      const name = "node:os";
      const os = (await import(/* @vite-ignore */ name)) as typeof import("node:os");
      const model = os.cpus()[0]?.model?.trim();
      if (model) return `${model} (${os.cpus().length} logical cores)`;
    } catch {
      // fall through to the generic name
    }
  }
  return `CPU (${hardwareThreads()} logical cores)`;
}

const unavailable = (reason: "FeatureMissing" | "NotInstalled", message: string, cause?: unknown) =>
  new BackendUnavailable({ backend: NAME, reason, message, cause });

const deviceError = (
  reason: "KernelFailed" | "OutOfMemory" | "LimitExceeded" | "Disposed",
  message: string,
  cause?: unknown,
) => new DeviceError({ backend: NAME, reason, message, cause });

/**
 * The provider's `configure`: `loadBackend("cpu-simd", { threads, build })` from an app. Anything else, or a bad
 * value, is InvalidInput InvalidOption. `base` carries what the entry fixes (workerd's precompiled modules).
 */
export const configureCpuSimd =
  (base: CpuSimdOptions = {}) =>
  (options: BackendOptions): Effect.Effect<CpuSimdBackend, BackendUnavailable | InvalidInput> => {
    const unknown = Object.keys(options).filter((k) => k !== "threads" && k !== "build");
    if (unknown.length > 0) {
      return Effect.fail(invalid("InvalidOption", `cpu-simd takes threads and build, not ${unknown.join(", ")}`));
    }
    const { threads, build } = options;
    if (threads !== undefined && !(typeof threads === "number" && Number.isInteger(threads) && threads >= 1)) {
      return Effect.fail(
        invalid("InvalidOption", `cpu-simd threads must be a positive integer, got ${String(threads)}`),
      );
    }
    if (build !== undefined && build !== "simd128" && build !== "relaxed-simd") {
      return Effect.fail(
        invalid("InvalidOption", `cpu-simd build must be "simd128" or "relaxed-simd", got ${String(build)}`),
      );
    }
    return makeCpuSimd({ ...base, threads: threads as number | undefined, build: build as Build | undefined });
  };

/** Loads the backend: picks the module, makes the memory, starts the workers. */
export const makeCpuSimd = (options: CpuSimdOptions = {}): Effect.Effect<CpuSimdBackend, BackendUnavailable> =>
  Effect.gen(function* () {
    const f = probeFeatures();
    if (!f.webAssembly) return yield* Effect.fail(unavailable("FeatureMissing", "this runtime has no WebAssembly"));
    if (!f.simd128) {
      return yield* Effect.fail(unavailable("FeatureMissing", "this runtime's WebAssembly has no SIMD128"));
    }
    const wanted = options.threads ?? Math.min(16, (yield* Effect.promise(nodeThreads)) ?? hardwareThreads());
    if (!Number.isInteger(wanted) || wanted < 1) {
      return yield* Effect.fail(
        unavailable("FeatureMissing", `threads must be a positive integer, got ${options.threads}`),
      );
    }
    let shared = wanted > 1 && f.sharedMemory && workersAvailable();
    let compiled: PrecompiledModule | undefined;
    if (options.modules) {
      compiled = choosePrecompiled(options.modules, f, shared) ??
        (shared ? choosePrecompiled(options.modules, f, false) : undefined);
      if (!compiled) {
        return yield* Effect.fail(
          unavailable("FeatureMissing", "none of the precompiled modules given suits this runtime"),
        );
      }
      shared = compiled.shared;
    }
    let build = compiled?.build ?? chooseBuild(f, shared);
    if (options.build) {
      if (options.build === "relaxed-simd" && build !== "relaxed-simd") {
        return yield* Effect.fail(
          unavailable("FeatureMissing", "relaxed SIMD was asked for but this runtime does not validate it"),
        );
      }
      if (compiled && compiled.build !== options.build) {
        return yield* Effect.fail(
          unavailable(
            "FeatureMissing",
            `the ${options.build} build was asked for, the precompiled module chosen is ${compiled.build}`,
          ),
        );
      }
      build = options.build;
    }
    if (!build) return yield* Effect.fail(unavailable("FeatureMissing", "neither module validates in this runtime"));
    const chosen = build;
    const engine = yield* Effect.tryPromise({
      try: () => Engine.create(chosen, shared, compiled?.module),
      catch: (e) => unavailable("FeatureMissing", `instantiating the ${chosen} module failed: ${String(e)}`, e),
    });
    let pool: WorkerPool | undefined;
    let threadNote = "";
    if (shared) {
      pool = yield* Effect.tryPromise({
        try: () => WorkerPool.start(wanted - 1, engine.module, engine.bytes, engine.memory),
        catch: (e) => e,
      }).pipe(
        Effect.catchAll((e) => {
          threadNote = ` (workers failed to start: ${String(e)})`;
          return Effect.succeed(undefined);
        }),
      );
    } else if (wanted > 1) {
      threadNote = !f.sharedMemory
        ? " (no SharedArrayBuffer: single-threaded)"
        : " (no workers in this runtime: single-threaded)";
    }
    const device = yield* Effect.promise(cpuName);
    const splitBlocks = options.decodeSplitBlocks ?? SPLIT_BLOCKS;
    if (!Number.isInteger(splitBlocks) || splitBlocks < 1) {
      return yield* Effect.fail(
        unavailable("FeatureMissing", `decodeSplitBlocks must be a positive integer, got ${splitBlocks}`),
      );
    }
    const backend = backendOn(engine, pool, device, threadNote, splitBlocks);
    yield* warmUp(backend);
    return backend;
  });

/**
 * A few small calls on every thread, so that V8 has the kernels' optimized code ready before the first real call
 * (wasm starts in a baseline tier and tiers up between calls; one long first call would run at half speed).
 */
function warmUp(b: CpuSimdBackend): Effect.Effect<void> {
  const N = 256, D = 64, H = 2 * b.threads;
  const data = new Float32Array(H * N * D);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37);
  const t = hostTensor(data, [1, H, N, D]);
  return resolveProblem(t, t, t, { causal: true }).pipe(
    Effect.flatMap((p) => Effect.all([b.attention(p, t, t, t), b.exactAttention!(p, t, t, t)])),
    Effect.repeatN(2),
    Effect.ignore,
  );
}

function backendOn(
  engine: Engine,
  pool: WorkerPool | undefined,
  device: string,
  threadNote: string,
  splitBlocks: number,
): CpuSimdBackend {
  const k = engine.kernels;
  const tileRows = k.tileRows();
  const threads = 1 + (pool?.size ?? 0);
  const lock = Effect.unsafeMakeSemaphore(1);
  let disposed = false;

  /** Lays the call out in wasm memory and copies K, V, the mask and the task records in (Q: `copyQ`, done apart). */
  function prepare(p: Problem, kk: HostTensor, v: HostTensor, exact: boolean, threaded: boolean): Plan {
    const plan = planCall(
      p,
      exact,
      threaded ? threads : 1,
      k.scratchBytes(Math.ceil(p.D / 8) * 8),
      tileRows,
      engine.arenaBase,
    );
    const limit = planLimit(p, plan);
    if (limit) throw deviceError(limit.reason, limit.message);
    try {
      engine.ensure(plan.end);
    } catch (e) {
      throw deviceError(
        "OutOfMemory",
        `the call needs ${(plan.end / 2 ** 20).toFixed(0)} MiB of wasm memory, which this runtime refused`,
        e,
      );
    }
    const f32 = engine.f32;
    writeCanonical(kk, f32, plan.k >>> 2, plan.Dp);
    writeCanonical(v, f32, plan.v >>> 2, plan.Dp);
    if (p.mask) {
      engine.u8.set(new Uint8Array(p.mask.data.buffer, p.mask.data.byteOffset, p.mask.data.byteLength), plan.mask);
    }
    writeRecords(plan, p, engine.i32, f32, tileRows);
    return plan;
  }

  const copyQ = (q: HostTensor, plan: Plan) => writeCanonical(q, engine.f32, plan.q >>> 2, plan.Dp);

  function finish(p: Problem, plan: Plan, out?: Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer>): AttentionOutput {
    const f32 = engine.f32;
    const output = readCanonical(
      f32,
      plan.out >>> 2,
      { B: p.B, H: p.Hq, N: p.Nq, D: p.D },
      plan.Dp,
      p.outputDtype,
      p.layout,
      out,
    );
    let lse: Float32Array | undefined;
    if (p.returnLse) {
      const n = p.B * p.Hq * p.Nq;
      lse = new Float32Array(n);
      const s = plan.stats >>> 2;
      for (let r = 0; r < n; r++) {
        const m = f32[s + 3 * r], l = f32[s + 3 * r + 1], qm = f32[s + 3 * r + 2];
        lse[r] = l > 0 ? (m + Math.log2(l)) / LOG2E + p.smScale * qm : -Infinity;
      }
    }
    if (!p.validated) poisonNonFinite(p, plan, f32, output, lse);
    return lse ? { output, lse } : { output };
  }

  const run =
    (exact: boolean) => (p: Problem, q: Tensor, kk: Tensor, v: Tensor): Effect.Effect<AttentionOutput, DeviceError> =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          if (disposed) return Effect.fail(deviceError("Disposed", "the cpu-simd backend was disposed"));
          if (q.kind !== "host" || kk.kind !== "host" || v.kind !== "host") {
            return Effect.fail(deviceError("KernelFailed", "cpu-simd takes host tensors (its memory is the host's)"));
          }
          const flops = 4 * p.B * p.Hq * p.Nq * p.Nk * p.D;
          const threaded = pool !== undefined && flops >= MIN_THREADED_FLOPS;
          const prepKind: TaskKind = exact ? "prepareKvF32" : "prepareKvInt8";
          const attnKind: TaskKind = exact ? "attendF32" : "attendInt8";
          const fail = (
            e: unknown,
          ) => (e instanceof DeviceError ? e : deviceError("KernelFailed", `kernel failed: ${String(e)}`, e));
          if (!threaded || !pool) {
            return Effect.try({
              try: () => {
                const plan = prepare(p, kk, v, exact, false);
                copyQ(q, plan);
                const f = k[prepKind], g = k[attnKind];
                for (let t = 0; t < plan.kvCount; t++) f(plan.kvTable, t, plan.scratch);
                for (let t = 0; t < plan.attnCount; t++) g(plan.attnTable, t, plan.scratch);
                return finish(p, plan);
              },
              catch: fail,
            });
          }
          const workers = pool;
          return Effect.tryPromise({
            try: async () => {
              const plan = prepare(p, kk, v, exact, true);
              // One run: the K/V pre-pass, then the attention tiles. The caller copies Q while the workers start on
              // the pre-pass, then makes the output array's first touch while they go on.
              const batches: { fn: TaskKind; table: number; count: number }[] = [
                { fn: prepKind, table: plan.kvTable, count: plan.kvCount },
                { fn: attnKind, table: plan.attnTable, count: plan.attnCount },
              ];
              const local = (b: number, t: number) => k[batches[b].fn](batches[b].table, t, plan.scratch);
              let out: Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer> | undefined;
              await workers.run(batches, engine.memory, COUNTER_AT, plan.scratch, plan.scratchBytes, local, {
                inputs: () => copyQ(q, plan),
                aside: () => (out = touchedOutput(p.B * p.Hq * p.Nq * p.D, p.outputDtype)),
              });
              return finish(p, plan, out);
            },
            catch: fail,
          });
        }),
      );

  return {
    name: NAME,
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
      pv: ["fixed16"],
      qkGranularity: ["block"],
    },
    device,
    details: {
      build: engine.build,
      threads: `${threads}${threadNote}`,
      memory: engine.shared ? "shared" : "unshared",
      kernels:
        "int8 Q·Kᵀ (i32x4.dot_i16x8_s), P·V in 16-bit fixed point; exact f32 baseline; KV cache with split-K decode",
    },
    upload: (t: HostTensor) =>
      Effect.fail(
        deviceError(
          "KernelFailed",
          `cpu-simd keeps no tensors between calls (tensor ${t.shape.join("×")}); pass host tensors`,
        ),
      ),
    download: () => Effect.fail(deviceError("KernelFailed", "cpu-simd keeps no tensors between calls")),
    attention: run(false),
    exactAttention: run(true),
    kvCache: (spec) =>
      makeKvCache({
        engine,
        lock,
        pool: () => pool,
        threads,
        disposed: () => disposed,
        error: deviceError,
        splitBlocks,
      }, spec),
    // A call's promise settles when its output is written: nothing is ever left queued.
    synchronize: Effect.void,
    wasmMemoryBytes: () => engine.memory.buffer.byteLength,
    threads,
    // Waits for a call in flight, then ends the workers (a process with no other work can then exit).
    dispose: lock.withPermits(1)(
      Effect.sync(() => {
        disposed = true;
        pool?.dispose();
        pool = undefined;
      }),
    ),
  };
}
