/**
 * The cuda backend: opens libsageattn_cuda.so, checks the device and the sa_params packing, and serves attention
 * on one CUDA stream. Host tensors are copied up, computed and copied back (one synchronisation, when the result is
 * read); device tensors stay on the device, and a device-in call returns a device tensor without waiting for the GPU.
 */
import {
  type AttentionBackend,
  type AttentionOutput,
  BackendUnavailable,
  contiguousStrides,
  DeviceError,
  type DeviceTensor,
  type HostTensor,
  hostTensor,
  invalid,
  type Problem,
  QK_GRANULARITIES,
  readEnv,
  requiredLength,
  type SageAttnError,
  type Shape4,
  shapeFor,
  type Tensor,
} from "@sageattn/core";
import { Effect } from "effect";
import { type OpenLibrary, openLibrary } from "./ffi/library.js";
import { attentionFlags, DTYPE_CODE, LAYOUT_CODE } from "./ffi/codes.js";
import { verifyKvLayout } from "./ffi/kv-params.js";
import { ParamsBuffer, verifyLayout } from "./ffi/params.js";
import type { Native } from "./ffi/symbols.js";
import { type Allocation, BYTES, CudaTensor, DeviceMemory, type TensorDescription } from "./device-tensor.js";
import { type CudaCalls, makeKvCache } from "./kv-cache.js";
import { toError, unwrap } from "./status.js";

/** The cuda backend's extras beyond the core contract. */
export interface CudaBackend extends AttentionBackend {
  /** The library file in use. */
  readonly libraryPath: string;
  /** Wraps a device address allocated elsewhere (e.g. by another CUDA library) as a tensor, without copying. */
  readonly adopt: (
    ptr: bigint,
    desc: { dtype: TensorDescription["dtype"]; layout: TensorDescription["layout"]; shape: Shape4; strides?: Shape4 },
  ) => DeviceTensor;
  /** Waits for every call queued so far. */
  readonly synchronize: Effect.Effect<void, SageAttnError>;
  /** Device memory [free, total] in bytes after synchronising and trimming the allocation pool. */
  readonly memoryInfo: Effect.Effect<{ free: number; total: number }, SageAttnError>;
  /** Owned device allocations still live. */
  readonly liveAllocations: () => number;
}

let opened: OpenLibrary | undefined; // the CUDA runtime inside registers exit handlers: the library stays open

const unavailable = (reason: BackendUnavailable["reason"], message: string, cause?: unknown) =>
  new BackendUnavailable({ backend: "cuda", reason, message, cause });

const loadCheck = (native: Native, status: number, what: string) =>
  unwrap(native, status, what, "load").pipe(
    Effect.mapError((e) => (e._tag === "BackendUnavailable" ? e : unavailable("NoDevice", e.message, e))),
  );

/** Loads the backend: library, packing check, device 0 (or SAGEATTN_CUDA_DEVICE), a stream. */
export const makeCuda: Effect.Effect<CudaBackend, BackendUnavailable> = Effect.gen(function* () {
  opened ??= yield* openLibrary;
  const lib = opened;
  const n = lib.native;
  const mismatch = verifyLayout(n) ?? verifyKvLayout(n);
  if (mismatch) {
    return yield* Effect.fail(
      unavailable("FeatureMissing", `${lib.path} does not match this package's sa_params: ${mismatch}`),
    );
  }
  const count = new Int32Array(1);
  yield* loadCheck(n, n.sa_device_count(count), "sa_device_count");
  const ordinal = Number(readEnv("SAGEATTN_CUDA_DEVICE") ?? "0");
  if (!(ordinal >= 0 && ordinal < count[0])) {
    return yield* Effect.fail(unavailable("NoDevice", `SAGEATTN_CUDA_DEVICE=${ordinal}, but ${count[0]} device(s)`));
  }
  yield* loadCheck(n, n.sa_set_device(ordinal), "sa_set_device");
  const name = new Uint8Array(256);
  const ints = new Int32Array(4);
  const mem = new BigUint64Array(2);
  yield* loadCheck(n, n.sa_device_query(ordinal, name, name.length, ints, mem), "sa_device_query");
  const deviceName = new TextDecoder().decode(name.subarray(0, Math.max(0, name.indexOf(0))));
  const [sms, major, minor, smemOptin] = ints;
  if (major < 8) {
    return yield* Effect.fail(
      unavailable(
        "FeatureMissing",
        `${deviceName} is compute capability ${major}.${minor}; the kernels need 8.0 or newer`,
      ),
    );
  }
  const streamOut = new BigUint64Array(1);
  yield* loadCheck(n, n.sa_stream_create(streamOut), "sa_stream_create");
  return makeBackend(lib, streamOut[0], {
    device: `${deviceName} (sm_${major}${minor}, ${sms} SMs, ${(Number(mem[0]) / 2 ** 30).toFixed(1)} GiB)`,
    details: {
      library: lib.path,
      version: String(n.sa_version()),
      computeCapability: `${major}.${minor}`,
      multiprocessors: String(sms),
      sharedMemoryPerBlock: String(smemOptin),
      deviceOrdinal: String(ordinal),
    },
    maxHeadDim: smemOptin >= 139_264 ? 256 : 128,
    // The library's own switch (csrc/heuristics.h) keeps a Hopper GPU on the mma.sync kernel.
    hopper: major === 9 && minor === 0 && readEnv("SAGEATTN_CUDA_KERNEL") !== "sm80",
  });
});

// Failures inside the synchronous call path travel as this and become Effect failures at its edge.
class Failure {
  constructor(readonly error: SageAttnError) {}
}

function makeBackend(
  lib: OpenLibrary,
  stream: bigint,
  // hopper: compute capability 9.0, where the wgmma kernel runs (head dims up to 128) and "int8" and "fp8" P·V with it.
  info: { device: string; details: Record<string, string>; maxHeadDim: number; hopper: boolean },
): CudaBackend {
  const n = lib.native;
  const memory = new DeviceMemory(n, stream);
  const params = new ParamsBuffer();
  const sizeOut = new BigUint64Array(1);
  const sizeFields = ParamsBuffer.sizeFields(); // the fields the cached workspace size was computed for
  let sizeBytes = 0n;
  let workspace: Allocation | undefined;
  let disposed = false;

  const must = (status: number, what: string) => {
    if (status !== 0) throw new Failure(toError(n, status, what, "call"));
  };
  const allocate = (bytes: number): Allocation => {
    const a = memory.allocate(bytes);
    if ("_tag" in a) throw new Failure(a);
    return a;
  };
  const alive = () => {
    if (disposed) {
      throw new Failure(
        new DeviceError({ backend: "cuda", reason: "Disposed", message: "the cuda backend was disposed" }),
      );
    }
  };
  // Runs a synchronous body as an Effect: a thrown Failure is the Effect's typed failure.
  const effect = <A>(body: () => A): Effect.Effect<A, SageAttnError> =>
    Effect.suspend(() => {
      try {
        return Effect.succeed(body());
      } catch (e) {
        if (e instanceof Failure) return Effect.fail(e.error);
        throw e;
      }
    });
  // Runs a synchronous body at once: a thrown Failure is rethrown as the tagged error itself.
  const now = <A>(body: () => A): A => {
    try {
      return body();
    } catch (e) {
      throw e instanceof Failure ? e.error : e;
    }
  };
  const synchronize = effect(() => must(n.sa_stream_synchronize(stream), "sa_stream_synchronize"));

  const uploadSync = (t: HostTensor): CudaTensor => {
    alive();
    const elements = requiredLength(t);
    const a = allocate(elements * BYTES[t.dtype]);
    const src = t.data.subarray(0, elements);
    try {
      must(n.sa_memcpy_htod(a.ptr, src, BigInt(src.byteLength), stream), "sa_memcpy_htod");
    } catch (e) {
      memory.free(a);
      throw e;
    }
    return memory.tensor(a, { dtype: t.dtype, layout: t.layout, shape: t.shape, strides: t.strides });
  };

  // A tensor written on another backend instance's stream is waited for first (streams do not order each other).
  const ownTensor = (t: DeviceTensor): CudaTensor => {
    if (!(t instanceof CudaTensor)) {
      throw new Failure(invalid("InvalidShape", `a ${t.backend} device tensor cannot be read by the cuda backend`));
    }
    if (t.handle.freed) {
      throw new Failure(new DeviceError({ backend: "cuda", reason: "Disposed", message: "tensor was disposed" }));
    }
    if (t.handle.stream !== stream && t.handle.stream !== 0n) {
      must(n.sa_stream_synchronize(t.handle.stream), "sa_stream_synchronize (tensor from another stream)");
    }
    return t;
  };

  // Device bytes into host memory, waited for (the caller reads them next).
  const readBack = (dst: ArrayBufferView, src: bigint, what: string) => {
    must(n.sa_memcpy_dtoh(dst, src, BigInt(dst.byteLength), stream), what);
    must(n.sa_stream_synchronize(stream), "sa_stream_synchronize");
  };

  const downloadSync = (t: DeviceTensor): HostTensor => {
    alive();
    const own = ownTensor(t);
    const elements = requiredLength(own);
    const data = own.dtype === "f32" ? new Float32Array(elements) : new Uint16Array(elements);
    readBack(data, own.handle.ptr, "sa_memcpy_dtoh");
    return hostTensor(data, own.shape, { dtype: own.dtype, layout: own.layout, strides: own.strides });
  };

  const ensureWorkspace = (bytes: bigint): Allocation => {
    if (workspace && BigInt(workspace.bytes) >= bytes) return workspace;
    if (workspace) memory.free(workspace);
    workspace = undefined;
    last.p = undefined;
    workspace = allocate(Number(bytes));
    return workspace;
  };

  // Where the kernel writes: the caller's device `out`, or a new tensor (a temporary one for host calls).
  const outputFor = (p: Problem, inputs: readonly CudaTensor[], onDevice: boolean, temps: CudaTensor[]): CudaTensor => {
    if (p.out?.kind === "device") {
      const o = ownTensor(p.out);
      const [start, end] = o.span;
      for (const t of inputs) {
        const [tStart, tEnd] = t.span;
        if (start < tEnd && tStart < end) {
          throw new Failure(invalid("InvalidOption", "out shares device memory with an input"));
        }
      }
      return o;
    }
    const shape = shapeFor(p.layout, { B: p.B, H: p.Hq, N: p.Nq, D: p.D });
    const out = memory.tensor(allocate(p.B * p.Hq * p.Nq * p.D * BYTES[p.outputDtype]), {
      dtype: p.outputDtype,
      layout: p.layout,
      shape,
      strides: contiguousStrides(shape),
    });
    if (p.out === undefined && onDevice) return out; // device call: the caller owns it
    temps.push(out);
    return out;
  };

  // A host call's result: read straight into the caller's host `out` when it is contiguous, else a new host tensor
  // (core copies that into a strided `out`).
  const deliverHost = (out: CudaTensor, target: Tensor | undefined): HostTensor => {
    if (target?.kind === "host" && target.strides.every((s, i) => s === out.strides[i])) {
      readBack(target.data.subarray(0, requiredLength(out)), out.handle.ptr, "sa_memcpy_dtoh");
      return target;
    }
    return downloadSync(out);
  };

  // The tensor on this device: its own, or a host tensor uploaded into a temporary the caller disposes.
  const place = (t: Tensor, temps: CudaTensor[]): CudaTensor => {
    if (t.kind === "device") return ownTensor(t);
    const u = uploadSync(t);
    temps.push(u);
    return u;
  };
  // The LSE's device rows, f32 [B, Hq, Nq], when the call asks for it (a temporary: the host gets a copy).
  const lseFor = (p: Problem, temps: CudaTensor[]): CudaTensor | undefined => {
    if (!p.returnLse) return undefined;
    const lse = memory.tensor(allocate(p.B * p.Hq * p.Nq * 4), {
      dtype: "f32",
      layout: "HND",
      shape: [p.B, p.Hq, p.Nq, 1],
      strides: [p.Hq * p.Nq, p.Nq, 1, 1],
    });
    temps.push(lse);
    return lse;
  };

  // What pb holds: the previous call's problem and tensors (p undefined once pb is rewritten or the workspace moves).
  const last: { p?: Problem; q?: CudaTensor; k?: CudaTensor; v?: CudaTensor; o?: CudaTensor } = {};

  const attentionSync = (p: Problem, q: Tensor, k: Tensor, v: Tensor): AttentionOutput => {
    alive();
    if (p.mask) throw new Failure(unavailable("Unsupported", "masks are not supported by the cuda backend yet"));
    if (p.D > info.maxHeadDim) {
      throw new Failure(
        unavailable("Unsupported", `head dim ${p.D} needs more shared memory than ${info.device} allows`),
      );
    }
    const onDevice = q.kind === "device" && k.kind === "device" && v.kind === "device";
    const temps: CudaTensor[] = [];
    try {
      const dq = place(q, temps), dk = place(k, temps), dv = place(v, temps);
      const out = outputFor(p, [dq, dk, dv], onDevice, temps);
      const lseRows = p.B * p.Hq * p.Nq;
      const lse = lseFor(p, temps);
      // The same problem on the same tensors as the previous call (a steady-state loop): its params are still in pb.
      if (
        p === last.p && dq === last.q && dk === last.k && dv === last.v && out === last.o && lse === undefined &&
        !p.varlen
      ) {
        must(n.sa_attention(params.bytes), "sa_attention");
        return onDevice ? { output: out } : { output: deliverHost(out, p.out) };
      }
      last.p = undefined;
      const pb = params.clear();
      if (p.varlen) {
        const { cuSeqlensQ: cq, cuSeqlensK: ck } = p.varlen;
        const cu = new Int32Array(cq.length * 2);
        cu.set(cq, 0);
        cu.set(ck, cq.length);
        const cuAlloc = allocate(cu.byteLength);
        temps.push(
          memory.tensor(cuAlloc, {
            dtype: "f32",
            layout: "HND",
            shape: [1, 1, 1, cu.length],
            strides: [cu.length, cu.length, cu.length, 1],
          }),
        );
        must(n.sa_memcpy_htod(cuAlloc.ptr, cu, BigInt(cu.byteLength), stream), "sa_memcpy_htod (cu_seqlens)");
        let maxQ = 0, maxK = 0;
        for (let s = 0; s + 1 < cq.length; s++) {
          maxQ = Math.max(maxQ, cq[s + 1] - cq[s]);
          maxK = Math.max(maxK, ck[s + 1] - ck[s]);
        }
        pb.setU64("cu_seqlens_q", cuAlloc.ptr).setU64("cu_seqlens_k", cuAlloc.ptr + BigInt(cq.length * 4));
        pb.setI32("num_seqs", cq.length - 1).setI32("max_seqlen_q", maxQ).setI32("max_seqlen_k", maxK);
      }
      pb.setU64("q", dq.handle.ptr).setU64("k", dk.handle.ptr).setU64("v", dv.handle.ptr).setU64("o", out.handle.ptr);
      pb.setU64("lse", lse ? lse.handle.ptr : 0n).setU64("stream", stream);
      pb.setStrides("q_strides", dq.strides).setStrides("k_strides", dk.strides).setStrides("v_strides", dv.strides)
        .setStrides("o_strides", out.strides);
      pb.setI32("batch", p.B).setI32("heads_q", p.Hq).setI32("heads_kv", p.Hkv).setI32("seqlen_q", p.Nq).setI32(
        "seqlen_k",
        p.Nk,
      ).setI32("head_dim", p.D);
      pb.setI32("dtype", DTYPE_CODE[p.dtype]).setI32("out_dtype", DTYPE_CODE[p.outputDtype]).setI32(
        "layout",
        LAYOUT_CODE[p.layout],
      );
      pb.setU32("flags", attentionFlags(p));
      pb.setF32("sm_scale", p.smScale);
      if (!pb.sameSizeAs(sizeFields)) {
        const status = n.sa_workspace_size(pb.bytes, sizeOut);
        if (status !== 0) sizeFields.fill(-1);
        must(status, "sa_workspace_size");
        sizeBytes = sizeOut[0];
      }
      const ws = ensureWorkspace(sizeBytes);
      pb.setU64("workspace", ws.ptr).setU64("workspace_size", BigInt(ws.bytes));
      must(n.sa_attention(pb.bytes), "sa_attention");
      if (lse === undefined) Object.assign(last, { p, q: dq, k: dk, v: dv, o: out });
      let lseHost: Float32Array | undefined;
      if (lse) {
        lseHost = new Float32Array(lseRows);
        readBack(lseHost, lse.handle.ptr, "sa_memcpy_dtoh (lse)");
      }
      const output = onDevice ? out : deliverHost(out, p.out);
      return lseHost ? { output, lse: lseHost } : { output };
    } finally {
      for (const t of temps) t.dispose();
    }
  };

  const calls: CudaCalls = {
    native: n,
    stream,
    must,
    allocate,
    free: (a) => memory.free(a),
    effect,
    now,
    fail: (e) => {
      throw new Failure(e);
    },
    place,
    outputFor,
    lseFor,
    deliverHost,
    readBack,
  };

  return {
    name: "cuda",
    capabilities: {
      dtypes: ["f32", "f16", "bf16"],
      maxHeadDim: info.maxHeadDim,
      causal: true,
      lse: true,
      mask: false,
      varlen: true,
      deviceTensors: true,
      exactKernel: false,
      kvCache: true,
      kvValueFormats: ["f16", "int8"],
      pv: info.hopper ? ["f16-block", "f32", "fp8", "int8"] : ["f16-block", "f32"],
      qkGranularity: QK_GRANULARITIES,
    },
    device: info.device,
    details: info.details,
    libraryPath: lib.path,
    upload: (t) => effect(() => uploadSync(t)),
    download: (t) => effect(() => downloadSync(t)),
    attention: (p, q, k, v) => effect(() => attentionSync(p, q, k, v)),
    attentionNow: (p, q, k, v) => now(() => attentionSync(p, q, k, v)),
    kvCache: (spec) => Effect.flatMap(effect(alive), () => makeKvCache(calls, spec)),
    adopt: (ptr, desc) => memory.adopt(ptr, { ...desc, strides: desc.strides ?? contiguousStrides(desc.shape) }),
    synchronize,
    memoryInfo: effect(() => {
      must(n.sa_stream_synchronize(stream), "sa_stream_synchronize");
      const out = new BigUint64Array(2);
      must(n.sa_mem_info(out), "sa_mem_info");
      return { free: Number(out[0]), total: Number(out[1]) };
    }),
    liveAllocations: () => memory.liveCount,
    dispose: Effect.sync(() => {
      if (disposed) return;
      disposed = true;
      n.sa_stream_synchronize(stream);
      memory.close();
      n.sa_stream_synchronize(stream);
      n.sa_stream_destroy(stream);
    }),
  };
}
