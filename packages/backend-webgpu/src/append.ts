import {
  type BlockLayout,
  encodeParams,
  K_BLOCK,
  type KvCacheSpec,
  logicalStrides,
  type ParamSchema,
  type ParamValues,
  type Tensor,
} from "@sageattn/core";
import type { CacheBuffers } from "./kv-cache.js";
import { grid1d } from "./pipelines.js";
import {
  bufferKey,
  type Engine,
  LimitError,
  loadConstants,
  packConstants,
  PARAMS,
  round4,
  SCRATCH,
  type Source,
  UNIFORM,
  writeHost,
} from "./run.js";
import type { CallBuffers } from "./scratch.js";
import type { BufferHandle } from "./tensors.js";

/** Where the cache stands before an append: its length and the tail slot holding the partial block's raw rows. */
export interface CacheState {
  readonly length: number;
  readonly tailIn: number;
}

/** One dispatch of an append. */
interface Step {
  readonly pipeline: GPUComputePipeline;
  readonly group: GPUBindGroup;
}

/**
 * What appends of one key share (row count; k's and v's buffers, element types and strides, not their offsets):
 * pipelines and bind groups. Per call only the uniforms (offsets, the cache's length, the tail slot) and the
 * number of blocks touched change, so a decode loop that appends views of one buffer creates and looks up nothing.
 */
interface AppendPlan {
  readonly pack: Step;
  readonly quantize: Step;
  readonly packGrid: readonly [number, number, number];
  /** Host k/v: the scratch buffers their elements are written into every call. */
  readonly hostK?: GPUBuffer;
  readonly hostV?: GPUBuffer;
  /** Writes the call's uniforms. */
  readonly uniforms: (k: Tensor, v: Tensor, at: CacheState) => void;
}

/** A tensor as the kernels read it: its buffer (the host scratch for host tensors) and the offset of element 0. */
function sourceOf(t: Tensor, hostBuffer: GPUBuffer | undefined): Source {
  const strides = logicalStrides(t);
  if (t.kind === "host") return { buffer: hostBuffer!, base: 0, strides, dtype: t.dtype, d: t.shape[3] };
  const h = t.handle as BufferHandle;
  return { buffer: h.buffer, base: h.offset, strides, dtype: t.dtype, d: t.shape[3] };
}

/**
 * Encodes one append of n rows at the cache's length (DESIGN §2 "Decode"): kv_mean (the first append, with
 * smoothing), pack_f16 (V into the cache at its length), kv_quantize_k (the blocks the rows touch, the partial one
 * rebuilt from its raw rows), one compute pass. Appends after the first replay a kept plan (see AppendPlan).
 */
export function encodeAppend(
  engine: Engine,
  calls: CallBuffers,
  spec: KvCacheSpec,
  cache: CacheBuffers,
  k: Tensor,
  v: Tensor,
  n: number,
  at: CacheState,
): { commands: GPUCommandBuffer } {
  const first = at.length === 0;
  const key = `append ${n} ${bufferKey(k)} ${bufferKey(v)}`;
  let plan = first ? undefined : (calls.plans.get(key) as AppendPlan | undefined);
  if (!plan) {
    plan = buildPlan(engine, calls, spec, cache, k, v, n);
    calls.keepPlan(key, plan);
  }
  if (plan.hostK) writeHost(engine, plan.hostK, k as Tensor & { kind: "host" });
  if (plan.hostV) writeHost(engine, plan.hostV, v as Tensor & { kind: "host" });
  plan.uniforms(k, v, at);

  const bhs = spec.batch * spec.headsKv;
  const touched = Math.ceil((at.length + n) / K_BLOCK) - Math.floor(at.length / K_BLOCK);
  if (bhs > engine.device.limits.maxComputeWorkgroupsPerDimension) {
    throw new LimitError(`kv_quantize_k needs ${bhs} workgroups in one dimension, over the device's limit`);
  }
  const enc = engine.device.createCommandEncoder({ label: "kv cache append" });
  const pass = enc.beginComputePass();
  if (first && spec.smoothK) {
    // Once per cache: not worth a kept plan.
    const src = sourceOf(k, plan.hostK);
    const params = uniform(calls, "kv mean", PARAMS.kvMean, {
      strides: src.strides,
      base: src.base,
      heads: spec.headsKv,
      tokens: n,
      d: spec.headDim,
      dp: cache.dp,
    });
    const pipeline = engine.pipelines.get("kv_mean", "f32", loadConstants(src));
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, calls.bindGroup(pipeline, [src.buffer, cache.mean, params]));
    pass.dispatchWorkgroups(cache.dp / 64, bhs, 1);
  }
  pass.setPipeline(plan.pack.pipeline);
  pass.setBindGroup(0, plan.pack.group);
  pass.dispatchWorkgroups(...plan.packGrid);
  pass.setPipeline(plan.quantize.pipeline);
  pass.setBindGroup(0, plan.quantize.group);
  pass.dispatchWorkgroups(touched, bhs, 1);
  pass.end();
  return { commands: enc.finish() };
}

const uniform = <S extends ParamSchema>(
  calls: CallBuffers,
  role: string,
  layout: BlockLayout<S>,
  values: ParamValues<S>,
) => calls.constant(role, encodeParams(layout, values), UNIFORM);

function buildPlan(
  engine: Engine,
  calls: CallBuffers,
  spec: KvCacheSpec,
  cache: CacheBuffers,
  k: Tensor,
  v: Tensor,
  n: number,
): AppendPlan {
  const { device, pipelines } = engine;
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  const { dp, rows, blocks } = cache;
  const bhs = spec.batch * spec.headsKv;
  // Host rows land in scratch buffers per row count (a prefill and single-row decode steps each keep their own).
  const hostBuffer = (t: Tensor, role: string) =>
    t.kind === "host" ? calls.scratch(`${role} ${n}`, round4(t.data.byteLength), SCRATCH) : undefined;
  const hostK = hostBuffer(k, "append k");
  const hostV = hostBuffer(v, "append v");
  const srcK = sourceOf(k, hostK);
  const srcV = sourceOf(v, hostV);

  const quads = bhs * n * (dp / 4);
  const g = grid1d(quads, maxDim);
  if (g.y > maxDim) {
    throw new LimitError(`pack_f16 needs a grid of ${g.x} × ${g.y} workgroups, over the device's limit`);
  }
  const packFields = (base: number, length: number) => ({
    strides: srcV.strides,
    base,
    heads: spec.headsKv,
    tokens: n,
    d: spec.headDim,
    dp,
    quads,
    rowPitch: g.rowPitch,
    dstTokens: rows,
    dstFirst: length,
  });
  const quantizeFields = (base: number, at: CacheState) => ({
    strides: srcK.strides,
    base,
    heads: spec.headsKv,
    d: spec.headDim,
    dp,
    length: at.length,
    count: n,
    rows,
    blocks,
    tailIn: at.tailIn,
    bhs,
  });
  // The uniform buffers keep their role (so their bind groups stay valid); only their bytes change per call.
  const packParams = uniform(calls, "kv pack v", PARAMS.packF16, packFields(srcV.base, 0));
  const kParams = uniform(
    calls,
    "kv quantize k",
    PARAMS.kvQuantizeK,
    quantizeFields(srcK.base, { length: 0, tailIn: 0 }),
  );
  const step = (kernel: "pack_f16" | "kv_quantize_k", constants: Record<string, number>, bound: GPUBuffer[]): Step => {
    const pipeline = pipelines.get(kernel, "f32", constants);
    return { pipeline, group: calls.bindGroup(pipeline, bound) };
  };
  return {
    // Every append flags the kv heads whose V could overflow a block's f16 sum (host V too: cheap, and core widens
    // those calls to f32 sums already); attend reads the flags where it sums in f16.
    pack: step("pack_f16", packConstants(srcV, true), [srcV.buffer, cache.v16, packParams, cache.vWide]),
    quantize: step("kv_quantize_k", loadConstants(srcK), [
      srcK.buffer,
      cache.mean,
      cache.k8,
      cache.kScales,
      cache.tail,
      kParams,
    ]),
    packGrid: [g.x, g.y, 1],
    hostK,
    hostV,
    uniforms: (kt, vt, at) => {
      uniform(calls, "kv pack v", PARAMS.packF16, packFields(baseOf(vt), at.length));
      uniform(calls, "kv quantize k", PARAMS.kvQuantizeK, quantizeFields(baseOf(kt), at));
    },
  };
}

/** Element offset of a tensor's element 0 in the buffer the kernels read (0 for a host tensor's scratch). */
const baseOf = (t: Tensor) => (t.kind === "host" ? 0 : (t.handle as BufferHandle).offset);
