import {
  type AttentionOutput,
  type BackendKvCache,
  channelMean,
  DeviceError,
  invalid,
  K_BLOCK,
  type KvCacheSpec,
  type Problem,
  quantizeRows,
  type SageAttnError,
  type Tensor,
} from "@sageattn/core";
import { Effect } from "effect";
import { encodeAppend } from "./append.js";
import { type DecodeEncoded, encodeDecode } from "./decode.js";
import { type Engine, LimitError, round4, SCRATCH } from "./run.js";
import { CallBuffers } from "./scratch.js";
import { BACKEND, deviceTensor, hostFromBytes } from "./tensors.js";
import { paddedHeadDim } from "./tiles.js";
import { MAP_READ, Usage } from "./usage.js";

/** What a cache needs from the backend that made it (backend.ts). */
export interface CacheHost {
  readonly current: Effect.Effect<Engine, DeviceError>;
  /** A tensor this backend cannot read (another backend's, an earlier device's), as the error to fail with. */
  readonly checkTensor: (engine: Engine, t: Tensor) => DeviceError | undefined;
  /** A device `out` that is not this device's, or overlaps an input. */
  readonly checkOut: (engine: Engine, p: Problem, inputs: Tensor[]) => SageAttnError | undefined;
  /** Why the device was lost, once it has been. */
  readonly lost: () => string | undefined;
}

/**
 * The cache's GPU buffers, per (b, kv head) and `rows` = capacity rounded up to a 64-row block:
 * K as int8 [rows, DP/4 words], one f32 scale per block, V as f16 [rows, DP/4 quads], the mean μ [DP] f32, and the
 * partial last block's rows K − μ in f32 [64, DP] in two slots (kv_quantize_k.wgsl reads one, writes the other).
 */
export interface CacheBuffers {
  readonly k8: GPUBuffer;
  readonly kScales: GPUBuffer;
  readonly v16: GPUBuffer;
  readonly mean: GPUBuffer;
  readonly tail: GPUBuffer;
  /**
   * Per (b, kv head): 1 once an append held some |v| over what a block's f16 sum can take (pack_f16 sets it; a new
   * buffer is zeros), so that attend sums that head's blocks in f32: device V is appended unscanned.
   */
  readonly vWide: GPUBuffer;
  /** Rows per (b, kv head): capacity rounded up to a whole block. */
  readonly rows: number;
  /** K blocks (scales) per (b, kv head). */
  readonly blocks: number;
  readonly dp: number;
}

// Safety net: a cache dropped without dispose() has its buffers destroyed when it is collected.
const unreleased = new FinalizationRegistry<GPUBuffer[]>((buffers) => {
  for (const b of buffers) b.destroy();
});

const deviceError = (reason: DeviceError["reason"], message: string, cause?: unknown) =>
  new DeviceError({ backend: BACKEND, reason, message, cause });

/** Tokens of a k/v (or q) tensor in a layout: [B, H, N, D] (HND) or [B, N, H, D] (NHD). */
const tokensOf = (t: Tensor) => (t.layout === "HND" ? t.shape[2] : t.shape[1]);

function allocate(device: GPUDevice, spec: KvCacheSpec): CacheBuffers {
  const dp = paddedHeadDim(spec.headDim);
  const blocks = Math.ceil(spec.capacity / K_BLOCK);
  const rows = blocks * K_BLOCK;
  const bhs = spec.batch * spec.headsKv;
  const sizes: Array<[string, number]> = [
    ["K as int8", bhs * rows * dp],
    ["K scales", bhs * blocks * 4],
    ["V as f16", bhs * rows * dp * 2],
    ["K mean", bhs * dp * 4],
    ["partial K block", 2 * bhs * K_BLOCK * dp * 4],
    ["kv heads with a wide V", bhs * 4],
  ];
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  for (const [what, bytes] of sizes) {
    if (bytes > limit) {
      throw new LimitError(
        `the cache's ${what} needs ${bytes} bytes, over the device's limit of ${limit} bytes per binding`,
      );
    }
  }
  const made: GPUBuffer[] = [];
  const make = ([label, bytes]: [string, number]) => {
    const b = device.createBuffer({ label: `kv cache: ${label}`, size: round4(bytes), usage: SCRATCH });
    made.push(b);
    return b;
  };
  try {
    const [k8, kScales, v16, mean, tail, vWide] = sizes.map(make);
    return { k8, kScales, v16, mean, tail, vWide, rows, blocks, dp };
  } catch (e) {
    for (const b of made) b.destroy();
    throw e;
  }
}

/** Submits `encode`'s commands in error scopes, turning WebGPU's errors into DeviceErrors. */
async function submitChecked<T extends { commands: GPUCommandBuffer }>(
  device: GPUDevice,
  encode: () => T,
  onError: (t: T) => void,
): Promise<T> {
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  let enc: T | undefined;
  let thrown: unknown;
  try {
    enc = encode();
    device.queue.submit([enc.commands]);
  } catch (e) {
    thrown = e;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (thrown !== undefined) throw thrown;
  if ((oom || validation) && enc) onError(enc);
  if (oom) throw deviceError("OutOfMemory", `webgpu ran out of memory: ${oom.message}`, oom);
  if (validation) throw deviceError("KernelFailed", `webgpu rejected the work: ${validation.message}`, validation);
  return enc as T;
}

const asDeviceError = (e: unknown): SageAttnError =>
  e instanceof DeviceError
    ? e
    : e instanceof LimitError
    ? deviceError("LimitExceeded", e.message, e)
    : deviceError("KernelFailed", String((e as Error)?.message ?? e), e);

async function mapped(staging: GPUBuffer, bytes: number, back: (b: GPUBuffer) => void): Promise<ArrayBuffer> {
  await staging.mapAsync(MAP_READ);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  back(staging);
  return out;
}

/**
 * A KV cache on the backend's device (decode spec): appends quantize K into int8 blocks in place and convert V to
 * f16 (append.ts: pack_f16, kv_quantize_k; kv_mean first on the first append), attend runs split-K few-query
 * attention (decode.ts). Buffers are made here once; both replay kept plans, so every call after the first of its
 * shape reuses its buffers, uniforms and bind groups. `requantize` reads the cache back and re-quantizes on the host (f64 mean as core's, once in a while).
 */
export function makeKvCache(host: CacheHost, spec: KvCacheSpec): Effect.Effect<BackendKvCache, SageAttnError> {
  return Effect.flatMap(host.current, (engine) =>
    Effect.try({
      try: () => build(host, engine, spec, allocate(engine.device, spec)),
      catch: asDeviceError,
    }));
}

function build(host: CacheHost, made: Engine, spec: KvCacheSpec, buffers: CacheBuffers): BackendKvCache {
  const device = made.device;
  const calls = new CallBuffers(device);
  const { dp, rows, blocks } = buffers;
  const bhs = spec.batch * spec.headsKv;
  let length = 0;
  let tailIn = 0;
  let disposed = false;

  // The engine for a call on this cache: the backend's, which must still be the device the cache lives on.
  const engineFor: Effect.Effect<Engine, DeviceError> = Effect.suspend(() => {
    if (disposed) return Effect.fail(deviceError("Disposed", "the kv cache was disposed"));
    return Effect.flatMap(
      host.current,
      (engine) =>
        engine.device === device ? Effect.succeed(engine) : Effect.fail(
          deviceError("DeviceLost", "the kv cache lives on an earlier GPUDevice (lost since); make it again"),
        ),
    );
  });

  const append = (k: Tensor, v: Tensor): Effect.Effect<void, SageAttnError> =>
    Effect.gen(function* () {
      const engine = yield* engineFor;
      const bad = host.checkTensor(engine, k) ?? host.checkTensor(engine, v);
      if (bad) return yield* Effect.fail(bad);
      const n = tokensOf(k);
      if (length + n > spec.capacity) {
        return yield* Effect.fail(
          invalid(
            "OutOfRange",
            `appending ${n} rows to a cache of length ${length} would pass its capacity of ${spec.capacity}`,
          ),
        );
      }
      yield* Effect.tryPromise({
        try: () =>
          submitChecked(
            device,
            () => encodeAppend(engine, calls, spec, buffers, k, v, n, { length, tailIn }),
            () => {},
          ),
        catch: asDeviceError,
      });
      if ((length + n) % K_BLOCK !== 0) tailIn = 1 - tailIn;
      length += n;
    });

  const attend = (p: Problem, q: Tensor): Effect.Effect<AttentionOutput, SageAttnError> =>
    Effect.gen(function* () {
      const engine = yield* engineFor;
      const bad = host.checkTensor(engine, q) ?? host.checkOut(engine, p, [q]);
      if (bad) return yield* Effect.fail(bad);
      if (length === 0) {
        return yield* Effect.fail(invalid("InvalidShape", "attend on an empty kv cache: append rows first"));
      }
      if (p.Nk !== length) {
        return yield* Effect.fail(
          invalid("InvalidShape", `the problem has Nk ${p.Nk}, the cache holds ${length} rows`),
        );
      }
      const encoded = yield* Effect.tryPromise({
        try: () =>
          submitChecked(
            device,
            () => encodeDecode(engine, calls, p, q, buffers, length),
            (e) => e.owned?.destroy(),
          ),
        catch: asDeviceError,
      });
      return yield* Effect.tryPromise({
        try: () => readBack(device, p, encoded),
        catch: (e) =>
          host.lost()
            ? deviceError("DeviceLost", `the GPUDevice was lost during the call (${host.lost()})`, e)
            : deviceError("KernelFailed", `reading the result back failed: ${(e as Error)?.message ?? e}`, e),
      });
    });

  const readBack = async (dev: GPUDevice, p: Problem, e: DecodeEncoded): Promise<AttentionOutput> => {
    const back = (b: GPUBuffer) => calls.giveBack(b);
    const lse = e.lseStaging ? new Float32Array(await mapped(e.lseStaging, e.lseBytes, back)) : undefined;
    if (p.out?.kind === "device") return { output: p.out, lse };
    if (e.owned) {
      return {
        output: deviceTensor(dev, e.owned, { dtype: p.outputDtype, layout: p.layout, shape: e.shape }, true),
        lse,
      };
    }
    const bytes = await mapped(e.outputStaging!, e.outputBytes, back);
    return { output: hostFromBytes(bytes, p.outputDtype, p.layout, e.shape), lse };
  };

  // The decode spec's requantize, on the host: K̂ = Ki·sK + μ (the partial block from its raw rows), μ' its f64
  // mean, K̂ − μ' quantized in blocks (core's quantizeRows, so bit for bit the oracle's), written back.
  const requantize: Effect.Effect<void, SageAttnError> = Effect.gen(function* () {
    const engine = yield* engineFor;
    if (length === 0) return;
    const D = spec.headDim;
    const full = Math.floor(length / K_BLOCK) * K_BLOCK;
    const [k8, scales, mean, tail] = yield* Effect.tryPromise({
      try: () => readBuffers(device, [buffers.k8, buffers.kScales, buffers.mean, buffers.tail]),
      catch: asDeviceError,
    });
    const ki = new Int8Array(k8);
    const sK = new Float32Array(scales);
    const mu = new Float32Array(mean);
    const raw = new Float32Array(tail);
    const newK8 = new Int8Array(ki.length);
    const newTail = new Float32Array(raw.length);
    const newMean = new Float32Array(mu.length);
    const newScales = new Float32Array(sK.length);
    for (let bh = 0; bh < bhs; bh++) {
      const kHat = new Float32Array(length * D);
      for (let t = 0; t < length; t++) {
        for (let d = 0; d < D; d++) {
          const x = t < full
            ? Math.fround(ki[(bh * rows + t) * dp + d] * sK[bh * blocks + Math.floor(t / K_BLOCK)])
            : raw[((tailIn * bhs + bh) * K_BLOCK + t - full) * dp + d];
          kHat[t * D + d] = Math.fround(x + mu[bh * dp + d]);
        }
      }
      const m = spec.smoothK ? channelMean(kHat, 0, length, D) : new Float32Array(D);
      const qz = quantizeRows(kHat, 0, length, D, K_BLOCK, 1, m);
      newMean.set(m, bh * dp);
      newScales.set(qz.scales, bh * blocks);
      for (let t = 0; t < length; t++) {
        newK8.set(qz.values.subarray(t * D, (t + 1) * D), (bh * rows + t) * dp);
        if (t >= full) {
          for (let d = 0; d < D; d++) {
            newTail[((tailIn * bhs + bh) * K_BLOCK + t - full) * dp + d] = Math.fround(kHat[t * D + d] - m[d]);
          }
        }
      }
    }
    const queue = engine.device.queue;
    queue.writeBuffer(buffers.k8, 0, newK8.buffer, 0, round4(newK8.byteLength));
    queue.writeBuffer(buffers.kScales, 0, newScales.buffer, 0, newScales.byteLength);
    queue.writeBuffer(buffers.mean, 0, newMean.buffer, 0, newMean.byteLength);
    queue.writeBuffer(buffers.tail, 0, newTail.buffer, 0, newTail.byteLength);
  });

  const owned = [buffers.k8, buffers.kScales, buffers.v16, buffers.mean, buffers.tail, buffers.vWide];
  const cache: BackendKvCache = {
    append,
    attend,
    requantize,
    dispose: Effect.sync(() => {
      if (disposed) return;
      disposed = true;
      unreleased.unregister(cache);
      calls.destroy();
      for (const b of owned) b.destroy();
    }),
  };
  unreleased.register(cache, owned, cache);
  return cache;
}

/** Copies buffers to the host (one submission, then maps each). */
async function readBuffers(device: GPUDevice, from: GPUBuffer[]): Promise<ArrayBuffer[]> {
  const enc = device.createCommandEncoder({ label: "kv cache read back" });
  const staging = from.map((b) => {
    const s = device.createBuffer({ label: "kv cache staging", size: b.size, usage: Usage.MAP_READ | Usage.COPY_DST });
    enc.copyBufferToBuffer(b, 0, s, 0, b.size);
    return s;
  });
  device.queue.submit([enc.finish()]);
  try {
    return await Promise.all(
      staging.map(async (s) => {
        await s.mapAsync(MAP_READ);
        return s.getMappedRange().slice(0);
      }),
    );
  } finally {
    for (const s of staging) s.destroy();
  }
}
