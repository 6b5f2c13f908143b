/**
 * The cuda backend's KV cache (docs/DESIGN.md §2, "Decode"): one device allocation laid out by the library
 * (csrc/kv_cache.h), appends that quantize K in place (csrc/kv_append.cu) and split-K few-query attention over it
 * (csrc/decode_attention.cu). Every call enqueues on the backend's stream and returns without waiting, like attention.
 */
import {
  type AttentionOutput,
  type BackendKvCache,
  DeviceError,
  type HostTensor,
  type KvCacheSpec,
  type Problem,
  type SageAttnError,
  type Tensor,
} from "@sageattn/core";
import { Effect } from "effect";
import type { Allocation, CudaTensor } from "./device-tensor.js";
import { DTYPE_CODE, FLAG, LAYOUT_CODE } from "./ffi/codes.js";
import { KvParamsBuffer } from "./ffi/kv-params.js";
import type { Native } from "./ffi/symbols.js";

/** What the cache borrows from its backend: the library, the stream, memory and the shared host/device helpers. */
export interface CudaCalls {
  readonly native: Native;
  readonly stream: bigint;
  readonly must: (status: number, what: string) => void;
  readonly allocate: (bytes: number) => Allocation;
  readonly free: (a: Allocation) => void;
  readonly effect: <A>(body: () => A) => Effect.Effect<A, SageAttnError>;
  /** Runs the body at once; a failure it ends with is thrown as the tagged error. */
  readonly now: <A>(body: () => A) => A;
  /** Inside `effect` or `now`: ends the body with this typed failure. */
  readonly fail: (e: SageAttnError) => never;
  /** The tensor on this backend's device: its own, or a host tensor uploaded into a temporary (pushed on temps). */
  readonly place: (t: Tensor, temps: CudaTensor[]) => CudaTensor;
  readonly outputFor: (p: Problem, inputs: readonly CudaTensor[], onDevice: boolean, temps: CudaTensor[]) => CudaTensor;
  readonly lseFor: (p: Problem, temps: CudaTensor[]) => CudaTensor | undefined;
  readonly deliverHost: (out: CudaTensor, target: Tensor | undefined) => HostTensor;
  readonly readBack: (dst: ArrayBufferView, src: bigint, what: string) => void;
}

export function makeKvCache(calls: CudaCalls, spec: KvCacheSpec): Effect.Effect<BackendKvCache, SageAttnError> {
  return calls.effect(() => {
    const { native: n, must, stream } = calls;
    const pb = new KvParamsBuffer();
    const bytesOut = new BigUint64Array(1);
    // Every call names the cache's value format (its layout depends on it); append and requantize add smoothing too.
    const format = spec.valueFormat === "int8" ? FLAG.kvValuesInt8 : 0;
    const shape = () =>
      pb.clear().setI32("batch", spec.batch).setI32("heads_kv", spec.headsKv).setI32("head_dim", spec.headDim).setU64(
        "stream",
        stream,
      ).setU32("flags", format);
    shape().setCache(0n, spec.capacity, 0);
    must(n.sa_kv_cache_size(pb.bytes, bytesOut), "sa_kv_cache_size");
    const cache = calls.allocate(Number(bytesOut[0]));
    let length = 0;
    let workspace: Allocation | undefined;
    let sizedHq = 0, sizedNq = 0; // the (heads_q, queries) the workspace was sized for (0: not yet)
    let gone = false;
    try {
      shape().setCache(cache.ptr, spec.capacity, 0);
      must(n.sa_kv_init(pb.bytes), "sa_kv_init");
    } catch (e) {
      calls.free(cache);
      throw e;
    }
    const alive = () => {
      if (gone) {
        calls.fail(new DeviceError({ backend: "cuda", reason: "Disposed", message: "this KV cache was disposed" }));
      }
    };
    const cacheFlags = (spec.smoothK ? 0 : FLAG.noSmoothK) | format;

    const appendSync = (k: Tensor, v: Tensor): void => {
      alive();
      const temps: CudaTensor[] = [];
      try {
        const dk = calls.place(k, temps), dv = calls.place(v, temps);
        const rows = dk.layout === "HND" ? dk.shape[2] : dk.shape[1];
        shape().setCache(cache.ptr, spec.capacity, length);
        pb.setU64("k", dk.handle.ptr).setU64("v", dv.handle.ptr).setStrides("k_strides", dk.strides).setStrides(
          "v_strides",
          dv.strides,
        );
        pb.setI32("seqlen_k", rows).setI32("dtype", DTYPE_CODE[dk.dtype]).setI32("layout", LAYOUT_CODE[spec.layout])
          .setU32("flags", cacheFlags);
        must(n.sa_kv_append(pb.bytes), "sa_kv_append");
        length += rows;
      } finally {
        for (const t of temps) t.dispose();
      }
    };

    const attendSync = (p: Problem, q: Tensor): AttentionOutput => {
      alive();
      const temps: CudaTensor[] = [];
      try {
        const onDevice = q.kind === "device";
        const dq = calls.place(q, temps);
        const out = calls.outputFor(p, [dq], onDevice, temps);
        const lse = calls.lseFor(p, temps);
        shape().setCache(cache.ptr, spec.capacity, length);
        pb.setU64("q", dq.handle.ptr).setU64("o", out.handle.ptr).setU64("lse", lse ? lse.handle.ptr : 0n);
        pb.setStrides("q_strides", dq.strides).setStrides("o_strides", out.strides);
        pb.setI32("heads_q", p.Hq).setI32("seqlen_q", p.Nq).setI32("dtype", DTYPE_CODE[p.dtype]).setI32(
          "out_dtype",
          DTYPE_CODE[p.outputDtype],
        );
        pb.setI32("layout", LAYOUT_CODE[p.layout]).setF32("sm_scale", p.smScale);
        pb.setU32(
          "flags",
          format | (p.causal ? FLAG.causal : 0) | (p.returnLse ? FLAG.lse : 0) |
            (p.pvAccumulation === "f32" ? FLAG.pvF32 : 0),
        );
        if (p.Hq !== sizedHq || p.Nq !== sizedNq) {
          must(n.sa_kv_workspace_size(pb.bytes, bytesOut), "sa_kv_workspace_size");
          const need = Number(bytesOut[0]);
          if (!workspace || workspace.bytes < need) {
            if (workspace) calls.free(workspace);
            workspace = undefined;
            if (need > 0) workspace = calls.allocate(need);
          }
          sizedHq = p.Hq;
          sizedNq = p.Nq;
        }
        pb.setU64("workspace", workspace ? workspace.ptr : 0n).setU64(
          "workspace_size",
          BigInt(workspace ? workspace.bytes : 0),
        );
        must(n.sa_kv_attend(pb.bytes), "sa_kv_attend");
        let lseHost: Float32Array | undefined;
        if (lse) {
          lseHost = new Float32Array(p.B * p.Hq * p.Nq);
          calls.readBack(lseHost, lse.handle.ptr, "sa_memcpy_dtoh (lse)");
        }
        const output = onDevice ? out : calls.deliverHost(out, p.out);
        return lseHost ? { output, lse: lseHost } : { output };
      } finally {
        for (const t of temps) t.dispose();
      }
    };

    const requantize = calls.effect(() => {
      alive();
      shape().setCache(cache.ptr, spec.capacity, length).setU32("flags", cacheFlags);
      must(n.sa_kv_requantize(pb.bytes), "sa_kv_requantize");
    });

    const dispose = Effect.sync(() => {
      if (gone) return;
      gone = true;
      calls.free(cache);
      if (workspace) calls.free(workspace);
    });

    return {
      append: (k, v) => calls.effect(() => appendSync(k, v)),
      appendNow: (k, v) => calls.now(() => appendSync(k, v)),
      attend: (p, q) => calls.effect(() => attendSync(p, q)),
      attendNow: (p, q) => calls.now(() => attendSync(p, q)),
      requantize,
      dispose,
    } satisfies BackendKvCache;
  });
}
