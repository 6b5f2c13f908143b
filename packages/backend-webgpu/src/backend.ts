import {
  type AttentionBackend,
  type AttentionOutput,
  type BackendOptions,
  type BackendUnavailable,
  DeviceError,
  type DeviceTensor,
  DTYPES,
  type HostTensor,
  invalid,
  type InvalidInput,
  MAX_HEAD_DIM,
  type Problem,
  readEnv,
  requiredLength,
  type SageAttnError,
  type Tensor,
} from "@sageattn/core";
import { Effect } from "effect";
import { acquire, type Acquired, type AcquireOptions } from "./acquire.js";
import { PipelineCache } from "./pipelines.js";
import { type KernelTimes, kernelTimes, profilingQuerySet } from "./recorder.js";
import { ScratchPool } from "./scratch.js";
import { DECODE_TARGET_WORKGROUPS, INT8_TILES_FIRST_MIN_KEYS } from "./tiles.js";
import { makeKvCache } from "./kv-cache.js";
import { encodeAttention, type Engine, LimitError, outputShape } from "./run.js";
import {
  adopt,
  type AdoptOptions,
  BACKEND,
  type BufferHandle,
  bytesPer,
  deviceTensor,
  hostFromBytes,
} from "./tensors.js";
import { MAP_READ, Usage } from "./usage.js";

export interface WebGPUOptions extends AcquireOptions {
  /**
   * Force a tile where it fits, for tuning: "64x64", or for the INT8 kernel "64x64r4" / "64x64r4p8" (rows per
   * invocation, keys per P·V step; tiles.ts). Else `SAGEATTN_WEBGPU_TILE`.
   */
  readonly tile?: string;
  /** Workgroups a KV cache's attend aims for (split-K ranges); for tuning. Else `SAGEATTN_WEBGPU_DECODE_WORKGROUPS`. */
  readonly decodeWorkgroups?: number;
  /**
   * Non-causal calls whose longest segment has at least this many keys run the INT8 kernel's query tiles first
   * (tiles.ts `INT8_TILES_FIRST_MIN_KEYS`); for tuning (0: always, Infinity: never). Else
   * `SAGEATTN_WEBGPU_TILES_FIRST_MIN_KEYS`.
   */
  readonly tilesFirstMinKeys?: number;
}

/** What a backend keeps across a lost device: the tuning its maker resolved. */
interface Tuning {
  readonly tile: string | undefined;
  readonly profile: boolean;
  readonly decodeWorkgroups: number;
  readonly tilesFirstMinKeys: number;
}
// `profile` (from AcquireOptions, or SAGEATTN_WEBGPU_PROFILE=1): time every kernel with timestamp queries, one pass
// per dispatch; `lastKernelTimes()` then gives the last call's GPU milliseconds per kernel. `subgroups` (or
// SAGEATTN_WEBGPU_SUBGROUPS=1): the subgroup variant of the INT8 kernel's row maxima where the device passes the
// load-time check (subgroups.ts); `details.subgroups` says whether it is on, and why not.

/** The webgpu backend, plus what only it can do: adopt a caller's GPUBuffer, and name its GPUDevice. */
export interface WebGPUBackend extends AttentionBackend {
  /** The device calls run on now (a new one after a loss). */
  readonly gpuDevice: () => GPUDevice;
  /** Views a caller's GPUBuffer (STORAGE usage, this device) as a DeviceTensor, without copying. */
  readonly adopt: (buffer: GPUBuffer, options: AdoptOptions) => Effect.Effect<DeviceTensor, DeviceError>;
  /** With `profile`: GPU milliseconds per kernel of the last call (undefined otherwise). */
  readonly lastKernelTimes: () => KernelTimes | undefined;
}

/** The first `bytes` of a MAP_READ staging buffer, which then goes `back` to its pool (or is destroyed). */
async function mapped(staging: GPUBuffer, bytes: number, back?: (b: GPUBuffer) => void): Promise<ArrayBuffer> {
  await staging.mapAsync(MAP_READ);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  if (back) back(staging);
  else staging.destroy();
  return out;
}

const deviceError = (reason: DeviceError["reason"], message: string, cause?: unknown) =>
  new DeviceError({ backend: BACKEND, reason, message, cause });

interface State {
  acquired: Acquired;
  engine: Engine;
  lost: string | undefined;
}

function stateFor(acquired: Acquired, tuning: Tuning): State {
  const state: State = {
    acquired,
    engine: {
      device: acquired.device,
      pipelines: new PipelineCache(acquired.device, acquired.subgroups),
      scratch: new ScratchPool(acquired.device),
      shaderF16: acquired.shaderF16,
      forcedTile: tuning.tile,
      decodeWorkgroups: tuning.decodeWorkgroups,
      tilesFirstMinKeys: tuning.tilesFirstMinKeys,
      querySet: tuning.profile ? profilingQuerySet(acquired.device) : undefined,
    },
    lost: undefined,
  };
  acquired.device.lost.then((info) => {
    state.lost = `${info.reason}: ${info.message}`;
  });
  return state;
}

/**
 * The provider's `configure`: `loadBackend("webgpu", { f16, profile, tile })` from an app. Anything else, or a bad
 * value, is InvalidInput InvalidOption (a caller's own GPUDevice goes through `makeWith({ device })`).
 */
export function configureWebGPU(
  options: BackendOptions,
): Effect.Effect<WebGPUBackend, BackendUnavailable | InvalidInput> {
  const unknown = Object.keys(options).filter((k) => !["f16", "profile", "tile", "subgroups"].includes(k));
  if (unknown.length > 0) {
    return Effect.fail(
      invalid("InvalidOption", `webgpu takes f16, profile, subgroups and tile, not ${unknown.join(", ")}`),
    );
  }
  const { f16, profile, tile, subgroups } = options;
  for (const [name, value] of [["f16", f16], ["profile", profile], ["subgroups", subgroups]] as const) {
    if (value !== undefined && typeof value !== "boolean") {
      return Effect.fail(invalid("InvalidOption", `webgpu ${name} must be a boolean, got ${String(value)}`));
    }
  }
  if (tile !== undefined && !(typeof tile === "string" && /^\d+x\d+$/.test(tile))) {
    return Effect.fail(invalid("InvalidOption", `webgpu tile must be "BQxBK" (e.g. "64x64"), got ${String(tile)}`));
  }
  return makeWith({
    f16: f16 as boolean | undefined,
    profile: profile as boolean | undefined,
    subgroups: subgroups as boolean | undefined,
    tile: tile as string | undefined,
  });
}

/** Loads the backend with options (a caller's device, f16 off for tests, a forced tile). */
export function makeWith(options: WebGPUOptions = {}): Effect.Effect<WebGPUBackend, BackendUnavailable> {
  const f16 = options.f16 ?? readEnv("SAGEATTN_WEBGPU_F16") !== "0";
  const tile = options.tile ?? readEnv("SAGEATTN_WEBGPU_TILE");
  const profile = options.profile ?? readEnv("SAGEATTN_WEBGPU_PROFILE") === "1";
  const subgroups = options.subgroups ?? readEnv("SAGEATTN_WEBGPU_SUBGROUPS") === "1";
  const decodeWorkgroups = options.decodeWorkgroups ??
    (Number(readEnv("SAGEATTN_WEBGPU_DECODE_WORKGROUPS")) || DECODE_TARGET_WORKGROUPS);
  const minKeysEnv = Number(readEnv("SAGEATTN_WEBGPU_TILES_FIRST_MIN_KEYS") || Number.NaN);
  const tilesFirstMinKeys = options.tilesFirstMinKeys ??
    (Number.isNaN(minKeysEnv) ? INT8_TILES_FIRST_MIN_KEYS : minKeysEnv);
  const tuning: Tuning = { tile, profile, decodeWorkgroups, tilesFirstMinKeys };
  const acquireOptions: AcquireOptions = { ...options, f16, profile, subgroups };
  return Effect.map(acquire(acquireOptions), (first) => build(stateFor(first, tuning), acquireOptions, tuning));
}

// `acquireOptions` makes a new device after a loss; `tuning` goes with it unchanged.
function build(initial: State, acquireOptions: AcquireOptions, tuning: Tuning): WebGPUBackend {
  let state = initial;
  let disposed = false;
  // Devices this backend made and lost: a tensor on one of them gets DeviceLost, not "another device".
  const earlierDevices = new WeakSet<GPUDevice>();
  let lastTimes: KernelTimes | undefined;

  // The engine for the next call: the current one, or a new device after a loss (only for devices we made).
  const current: Effect.Effect<Engine, DeviceError> = Effect.suspend(() => {
    if (disposed) return Effect.fail(deviceError("Disposed", "the webgpu backend was disposed"));
    if (!state.lost) return Effect.succeed(state.engine);
    if (state.acquired.external) {
      return Effect.fail(deviceError("DeviceLost", `the caller's GPUDevice was lost (${state.lost})`));
    }
    return Effect.map(
      Effect.mapError(
        acquire(acquireOptions),
        (e) => deviceError("DeviceLost", `the GPUDevice was lost and no new one could be made: ${e.message}`, e),
      ),
      (acquired) => {
        earlierDevices.add(state.acquired.device);
        state = stateFor(acquired, tuning);
        return state.engine;
      },
    );
  });

  const checkTensor = (engine: Engine, t: Tensor): DeviceError | undefined => {
    if (t.kind === "host") return undefined;
    if (t.backend !== BACKEND) {
      return deviceError("KernelFailed", `a ${t.backend} device tensor was passed to the webgpu backend`);
    }
    const h = t.handle as BufferHandle;
    if (h.device !== engine.device) {
      return deviceError("DeviceLost", "the tensor lives on an earlier GPUDevice (lost since); upload it again");
    }
    return undefined;
  };

  // A device `out` is written in place: it must live on this device and share no bytes with q, k or v (the store
  // would race the reads of a later call, or overwrite this call's inputs in the exact kernel's pre-pass).
  const checkOut = (engine: Engine, p: Problem, inputs: Tensor[]): InvalidInput | DeviceError | undefined => {
    const out = p.out;
    if (out?.kind !== "device") return undefined;
    if (out.backend !== BACKEND) return invalid("InvalidOption", `out is a ${out.backend} tensor, not a webgpu one`);
    const h = out.handle as BufferHandle;
    if (h.device !== engine.device) {
      return state.acquired.external || !earlierDevices.has(h.device)
        ? invalid("InvalidOption", "out lives on another GPUDevice than the backend's")
        : deviceError("DeviceLost", "out lives on an earlier GPUDevice (lost since); make it again");
    }
    const span = (t: Tensor & { kind: "device" }) => {
      const th = t.handle as BufferHandle;
      const per = bytesPer(t.dtype);
      return [th.offset * per, (th.offset + requiredLength(t)) * per] as const;
    };
    const [o0, o1] = span(out);
    for (const [i, t] of inputs.entries()) {
      if (t.kind !== "device" || (t.handle as BufferHandle).buffer !== h.buffer) continue;
      const [t0, t1] = span(t);
      if (o0 < t1 && t0 < o1) return invalid("InvalidOption", `out shares GPU memory with ${"qkv"[i]}`);
    }
    return undefined;
  };

  const run =
    (exact: boolean) => (p: Problem, q: Tensor, k: Tensor, v: Tensor): Effect.Effect<AttentionOutput, SageAttnError> =>
      Effect.gen(function* () {
        const engine = yield* current;
        const bad = checkTensor(engine, q) ?? checkTensor(engine, k) ?? checkTensor(engine, v) ??
          checkOut(engine, p, [q, k, v]);
        if (bad) return yield* Effect.fail(bad);
        const device = engine.device;
        const encoded = yield* Effect.tryPromise({
          try: async () => {
            device.pushErrorScope("out-of-memory");
            device.pushErrorScope("validation");
            let enc;
            try {
              enc = encodeAttention(engine, p, q, k, v, exact);
              device.queue.submit([enc.commands]);
            } finally {
              const validation = await device.popErrorScope();
              const oom = await device.popErrorScope();
              if (enc) { for (const b of enc.temporaries) b.destroy(); }
              if (enc && (oom || validation)) {
                for (const b of [enc.output, enc.outputStaging, enc.lseStaging, enc.profile?.staging]) {
                  b?.destroy();
                }
              }
              if (oom) throw deviceError("OutOfMemory", `webgpu ran out of memory: ${oom.message}`, oom);
              if (validation) {
                throw deviceError("KernelFailed", `webgpu rejected the work: ${validation.message}`, validation);
              }
            }
            return enc;
          },
          catch: (e) =>
            e instanceof DeviceError
              ? e
              : e instanceof LimitError
              ? deviceError("LimitExceeded", e.message, e)
              : deviceError("KernelFailed", String((e as Error)?.message ?? e), e),
        });
        const finished = yield* Effect.tryPromise({
          try: async () => {
            if (encoded.profile) {
              lastTimes = kernelTimes(
                new BigUint64Array(await mapped(encoded.profile.staging, encoded.profile.names.length * 16)),
                encoded.profile.names,
              );
            }
            const back = (b: GPUBuffer) => encoded.calls.giveBack(b);
            const lse = encoded.lseStaging
              ? new Float32Array(await mapped(encoded.lseStaging, encoded.lseBytes, back))
              : undefined;
            if (p.out?.kind === "device") return { output: p.out, lse };
            if (encoded.output) {
              return {
                output: deviceTensor(device, encoded.output, {
                  dtype: p.outputDtype,
                  layout: p.layout,
                  shape: outputShape(p),
                }, true),
                lse,
              };
            }
            const bytes = await mapped(encoded.outputStaging!, encoded.outputBytes, back);
            return { output: hostFromBytes(bytes, p.outputDtype, p.layout, outputShape(p)), lse };
          },
          catch: (e) =>
            state.lost
              ? deviceError(
                "DeviceLost",
                `the GPUDevice was lost during the call (${state.lost}); the next call makes a new one`,
                e,
              )
              : deviceError("KernelFailed", `reading the result back failed: ${(e as Error)?.message ?? e}`, e),
        });
        if (state.lost) {
          return yield* Effect.fail(
            deviceError(
              "DeviceLost",
              `the GPUDevice was lost during the call (${state.lost}); the next call makes a new one`,
            ),
          );
        }
        return finished as AttentionOutput;
      });

  const upload = (t: HostTensor): Effect.Effect<DeviceTensor, SageAttnError> =>
    Effect.flatMap(current, (engine) =>
      Effect.try({
        try: () => {
          const size = Math.max(4, Math.ceil(t.data.byteLength / 4) * 4);
          if (size > engine.device.limits.maxStorageBufferBindingSize) {
            throw new LimitError(`the tensor needs ${size} bytes, over the device's binding limit`);
          }
          const buffer = engine.device.createBuffer({
            size,
            usage: Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST,
            mappedAtCreation: true,
          });
          new Uint8Array(buffer.getMappedRange()).set(
            new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
          );
          buffer.unmap();
          return deviceTensor(engine.device, buffer, t, true);
        },
        catch: (e) => (e instanceof LimitError
          ? deviceError("LimitExceeded", e.message, e)
          : deviceError("OutOfMemory", String((e as Error)?.message ?? e), e)),
      }));

  const download = (t: DeviceTensor): Effect.Effect<HostTensor, SageAttnError> =>
    Effect.gen(function* () {
      const engine = yield* current;
      const bad = checkTensor(engine, t);
      if (bad) return yield* Effect.fail(bad);
      const h = t.handle as BufferHandle;
      const per = bytesPer(t.dtype);
      const elements = t.shape.reduce((a, x, i) => a + (x - 1) * t.strides[i], 0) + 1;
      // Copies start on a 4-byte boundary: an f16 tensor at an odd element offset takes one element before it.
      const lead = (h.offset * per) % 4;
      const start = h.offset * per - lead;
      const bytes = elements * per + lead;
      const data = yield* Effect.tryPromise({
        try: async () => {
          const size = Math.ceil(bytes / 4) * 4;
          const staging = engine.device.createBuffer({ size, usage: Usage.MAP_READ | Usage.COPY_DST });
          const enc = engine.device.createCommandEncoder();
          enc.copyBufferToBuffer(h.buffer, start, staging, 0, Math.min(size, h.buffer.size - start));
          engine.device.queue.submit([enc.finish()]);
          await staging.mapAsync(MAP_READ);
          const out = staging.getMappedRange().slice(lead, lead + elements * per);
          staging.unmap();
          staging.destroy();
          return out;
        },
        catch: (e) => deviceError("KernelFailed", `download failed: ${(e as Error)?.message ?? e}`, e),
      });
      return { ...hostFromBytes(data, t.dtype, t.layout, t.shape), strides: t.strides };
    });

  return {
    name: BACKEND,
    capabilities: {
      dtypes: DTYPES,
      maxHeadDim: MAX_HEAD_DIM,
      causal: true,
      lse: true,
      mask: false,
      varlen: true,
      deviceTensors: true,
      exactKernel: true,
      kvCache: true,
      pv: ["f16-block", "f32"],
      qkGranularity: ["block"],
    },
    get device() {
      return state.acquired.description;
    },
    get details() {
      const details: Record<string, string> = {
        ...state.acquired.details,
        pv: state.acquired.shaderF16 ? "f16 (shader-f16)" : "f32",
      };
      if (tuning.tile) details.tile = tuning.tile;
      return details;
    },
    upload,
    download,
    attention: run(false),
    exactAttention: run(true),
    kvCache: (spec) => makeKvCache({ current, checkTensor, checkOut, lost: () => state.lost }, spec),
    synchronize: Effect.flatMap(current, (engine) => Effect.promise(() => engine.device.queue.onSubmittedWorkDone())),
    gpuDevice: () => state.engine.device,
    lastKernelTimes: () => lastTimes,
    adopt: (buffer, o) => Effect.flatMap(current, (engine) => adopt(engine.device, buffer, o)),
    dispose: Effect.sync(() => {
      if (disposed) return;
      disposed = true;
      state.engine.scratch.release();
      state.engine.querySet?.destroy();
      if (!state.acquired.external) state.acquired.device.destroy();
    }),
  };
}
