import {
  type BlockLayout,
  DTYPE_CODE,
  encodeParams,
  K_BLOCK,
  LOG2E,
  logicalStrides,
  type ParamSchema,
  type ParamValues,
  type Problem,
  Q_BLOCK,
  type Shape4,
  type Tensor,
} from "@sageattn/core";
import type { CacheBuffers } from "./kv-cache.js";
import { grid1d } from "./pipelines.js";
import {
  CONSTANT,
  type Engine,
  LimitError,
  loadConstants,
  outputPlacement,
  outputShape,
  outputTarget,
  PARAMS,
  round4,
  SCRATCH,
  type Source,
  tensorKey,
  UNIFORM,
  writeHost,
} from "./run.js";
import type { CallBuffers } from "./scratch.js";
import type { KernelName, Precision, UnrollCounts } from "./shaders.js";
import { type BufferHandle, bytesPer } from "./tensors.js";
import { decodeShape, decodeSplits } from "./tiles.js";
import { Usage } from "./usage.js";

/** What one attend call encoded: as run.ts's Encoded, for the cache's own CallBuffers. */
export interface DecodeEncoded {
  readonly commands: GPUCommandBuffer;
  /** A new output buffer for the caller (device q without `out`). */
  readonly owned?: GPUBuffer;
  readonly outputStaging?: GPUBuffer;
  readonly outputBytes: number;
  readonly lseStaging?: GPUBuffer;
  readonly lseBytes: number;
  readonly shape: Shape4;
}

/** One dispatch of a decode plan. */
interface Step {
  readonly pipeline: GPUComputePipeline;
  readonly group: GPUBindGroup;
  readonly grid: readonly [number, number, number];
}

/** What attend calls of one key share; only the ranges (and the host q's elements) change with the cache's length. */
interface DecodePlan {
  readonly steps: readonly Step[];
  /** Index of attention_decode in `steps`: its grid's x is the number of ranges. */
  readonly decodeStep: number;
  readonly hostQ?: GPUBuffer;
  readonly target: GPUBuffer;
  readonly owned?: GPUBuffer;
  readonly lse: GPUBuffer;
  /** Writes the length-dependent uniforms and returns the number of ranges. */
  readonly ranges: (length: number) => number;
}

/**
 * Encodes attention of q against the cache's `length` rows (DESIGN §2 with the cache's mean, the decode spec):
 * Q quantization (quantize_int8 with the mean given, also the LSE row term), attention_decode over split key ranges,
 * decode_merge (and store_output where the output is not whole words), one command buffer. The plan of an earlier
 * call with the same key (Nq, options, q's and out's buffers) is replayed with two uniforms rewritten, so a steady
 * run of decode steps allocates nothing and looks nothing up; buffers are per Nq, kept by the cache's `calls`.
 */
export function encodeDecode(
  engine: Engine,
  calls: CallBuffers,
  p: Problem,
  q: Tensor,
  cache: CacheBuffers,
  length: number,
): DecodeEncoded {
  const cacheable = q.kind === "host" || p.out !== undefined;
  const key = `${p.Nq} ${p.layout} ${p.outputDtype} ${p.causal} ${p.smScale} ${p.returnLse} ${p.pvAccumulation} ${
    tensorKey(q)
  } ${tensorKey(p.out)}`;
  let plan = cacheable ? (calls.plans.get(key) as DecodePlan | undefined) : undefined;
  if (!plan) {
    plan = buildPlan(engine, calls, p, q, cache);
    if (cacheable) calls.keepPlan(key, plan);
  }
  if (plan.hostQ) writeHost(engine, plan.hostQ, q as Tensor & { kind: "host" });
  const splits = plan.ranges(length);

  const enc = engine.device.createCommandEncoder({ label: "kv cache attend" });
  const pass = enc.beginComputePass();
  plan.steps.forEach((s, i) => {
    pass.setPipeline(s.pipeline);
    pass.setBindGroup(0, s.group);
    if (i === plan.decodeStep) pass.dispatchWorkgroups(splits, s.grid[1], s.grid[2]);
    else pass.dispatchWorkgroups(...s.grid);
  });
  pass.end();
  const totalRows = p.B * p.Hq * p.Nq;
  const outputBytes = totalRows * p.D * bytesPer(p.outputDtype);
  const lseBytes = totalRows * 4;
  const staging = (from: GPUBuffer, bytes: number) => {
    const b = calls.staging(round4(bytes), Usage.MAP_READ | Usage.COPY_DST);
    enc.copyBufferToBuffer(from, 0, b, 0, round4(bytes));
    return b;
  };
  const outputStaging = q.kind === "host" ? staging(plan.target, outputBytes) : undefined;
  const lseStaging = p.returnLse ? staging(plan.lse, lseBytes) : undefined;
  return {
    commands: enc.finish(),
    owned: plan.owned,
    outputStaging,
    outputBytes,
    lseStaging,
    lseBytes,
    shape: outputShape(p),
  };
}

function buildPlan(engine: Engine, calls: CallBuffers, p: Problem, q: Tensor, cache: CacheBuffers): DecodePlan {
  const { device, pipelines } = engine;
  const limits = device.limits;
  const maxDim = limits.maxComputeWorkgroupsPerDimension;
  const { dp } = cache;
  const tag = `nq${p.Nq}`;
  const precision: Precision = p.pvAccumulation === "f16-block" ? (engine.shaderF16 ? "f16" : "f16emu") : "f32";
  const groupRows = p.group * p.Nq;
  const shape = decodeShape(groupRows, dp, limits.maxComputeWorkgroupStorageSize);
  if (!shape) {
    throw new LimitError(
      `head dim ${p.D} needs more workgroup memory than the device's ${limits.maxComputeWorkgroupStorageSize} bytes`,
    );
  }
  const chunks = Math.ceil(groupRows / shape.rb);
  const groups = p.B * p.Hkv * chunks;
  // Partial rows are sized for the most ranges any length of this cache can take, so they never grow.
  const maxSplits = Math.max(1, Math.min(cache.blocks, Math.ceil(engine.decodeWorkgroups / groups)));
  const totalRows = p.B * p.Hq * p.Nq;
  const qBlocks = Math.ceil(p.Nq / Q_BLOCK);
  const checkGrid = (what: string, ...dims: number[]) => {
    if (dims.some((d) => d > maxDim)) {
      throw new LimitError(
        `${what} needs a grid of ${dims.join(" × ")} workgroups, over the device's ${maxDim} per dimension`,
      );
    }
  };
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const scratch = (role: string, bytes: number) => {
    if (bytes > limit) {
      throw new LimitError(`${role} needs ${bytes} bytes, over the device's limit of ${limit} bytes per binding`);
    }
    return calls.scratch(`${role} ${tag}`, bytes, SCRATCH);
  };
  const uniform = <S extends ParamSchema>(role: string, layout: BlockLayout<S>, values: ParamValues<S>) =>
    calls.constant(`${role} ${tag}`, encodeParams(layout, values), UNIFORM);
  const steps: Step[] = [];
  const dispatch = (
    kernel: KernelName,
    prec: Precision,
    overrides: Record<string, number>,
    bound: GPUBuffer[],
    grid: [number, number, number],
    counts?: UnrollCounts,
  ) => {
    checkGrid(kernel, ...grid);
    const pipeline = pipelines.get(kernel, prec, overrides, counts);
    steps.push({ pipeline, group: calls.bindGroup(pipeline, bound), grid });
  };

  // Q quantization: one 128-row block per (b, head) while Nq ≤ 128; the row term smScale·(q·μ) into `lse`.
  let src: Source;
  let hostQ: GPUBuffer | undefined;
  if (q.kind === "host") {
    hostQ = scratch("input q", round4(q.data.byteLength));
    src = { buffer: hostQ, base: 0, strides: logicalStrides(q), dtype: q.dtype, d: p.D };
  } else {
    const h = q.handle as BufferHandle;
    src = { buffer: h.buffer, base: h.offset, strides: logicalStrides(q), dtype: q.dtype, d: p.D };
  }
  const q8 = scratch("Q as int8", totalRows * dp);
  const qScales = scratch("Q scales", p.B * p.Hq * qBlocks * 4);
  const lse = scratch("lse", totalRows * 4);
  // One segment per batch entry; with the mean given, quantize_int8 reads only its query side.
  const segWords = new Uint32Array(p.B * 8);
  for (let b = 0; b < p.B; b++) segWords.set([b, 0, p.Nq, 0, 0, 0, 0, 0], b * 8);
  const segs = calls.constant(`segments ${tag}`, new Uint8Array(segWords.buffer), CONSTANT);
  const qParams = uniform("quantize q", PARAMS.quantize, {
    strides: src.strides,
    base: src.base,
    heads: p.Hq,
    group: p.group,
    kvHeads: p.Hkv,
    d: p.D,
    dp,
    nTotal: p.Nq,
    blocksTotal: qBlocks,
    scale: Math.fround(p.smScale * LOG2E),
    subtractMean: 0,
    rowBias: p.returnLse ? 1 : 0,
    forQueries: 1,
    scaleOffset: 0,
    meanGiven: 1,
  });
  dispatch("quantize_int8", "f32", { ...loadConstants(src), BLOCK: Q_BLOCK }, [
    src.buffer,
    segs,
    cache.mean,
    q8,
    qScales,
    lse,
    qParams,
  ], [qBlocks, p.Hq, p.B]);

  // Split-K attention: partial (m, l, acc) rows per key range; its uniform and range count are set per call.
  const partML = scratch("partial m l", maxSplits * totalRows * 8);
  const partO = scratch("partial acc", maxSplits * totalRows * dp * 4);
  const decodeFields = (length: number, perSplit: number): ParamValues<typeof PARAMS.decode.schema> => ({
    hq: p.Hq,
    hkv: p.Hkv,
    group: p.group,
    nq: p.Nq,
    nk: length,
    rows: cache.rows,
    kBlocks: cache.blocks,
    qBlocks,
    groupRows,
    blocksPerSplit: perSplit,
    totalRows,
  });
  const decodeParams = uniform("decode", PARAMS.decode, decodeFields(0, 1));
  const decodeStep = steps.length;
  dispatch(
    "attention_decode",
    precision,
    { DP: dp, RB: shape.rb, WG: shape.wg, CAUSAL: p.causal ? 1 : 0, WIDEN: precision === "f32" ? 0 : 1 },
    [q8, cache.k8, cache.v16, qScales, cache.kScales, partML, partO, decodeParams, cache.vWide],
    [maxSplits, chunks, p.B * p.Hkv],
    { KW: dp / 16, RS: shape.rs, RT: shape.rt },
  );

  // Merge (and the output store).
  const placement = outputPlacement(p);
  const [sb, sh, sn, sd] = placement.strides;
  const align = p.outputDtype === "f32" ? 2 : 4;
  const fused = sd === 1 && p.D % 4 === 0 && [placement.base, sb, sh, sn].every((x) => x % align === 0);
  const { target, owned } = outputTarget(engine, calls, p, placement, q.kind === "host");
  const result = fused ? target : scratch("attention result", totalRows * dp * 4);
  const threads = totalRows * (dp / 4);
  const g = grid1d(threads, maxDim);
  const mergeFields = (splits: number): ParamValues<typeof PARAMS.decodeMerge.schema> => ({
    hq: p.Hq,
    nq: p.Nq,
    d: p.D,
    totalRows,
    splits,
    returnLse: p.returnLse ? 1 : 0,
    outBase: placement.base,
    rowPitch: g.rowPitch,
    outStrides: placement.strides,
  });
  const mergeParams = uniform("merge", PARAMS.decodeMerge, mergeFields(1));
  dispatch("decode_merge", "f32", { DP: dp, STORE: fused ? 1 : 0, OUT_DTYPE: DTYPE_CODE[p.outputDtype] }, [
    partML,
    partO,
    result,
    lse,
    mergeParams,
  ], [g.x, g.y, 1]);
  if (!fused) {
    const pairs = p.outputDtype !== "f32" && sd === 1 && p.D % 2 === 0 &&
      [placement.base, sb, sh, sn].every((x) => x % 2 === 0);
    const storeThreads = (totalRows * p.D) / (pairs ? 2 : 1);
    const gs = grid1d(storeThreads, maxDim);
    const storeParams = uniform("store", PARAMS.store, {
      heads: p.Hq,
      tokens: p.Nq,
      d: p.D,
      dp,
      threads: storeThreads,
      rowPitch: gs.rowPitch,
      base: placement.base,
      strides: placement.strides,
    });
    dispatch("store_output", "f32", { OUT_DTYPE: DTYPE_CODE[p.outputDtype], PAIRS: pairs ? 1 : 0 }, [
      result,
      target,
      storeParams,
    ], [gs.x, gs.y, 1]);
  }

  return {
    steps,
    decodeStep,
    hostQ,
    target,
    owned,
    lse,
    ranges: (length) => {
      const { perSplit, splits } = decodeSplits(Math.ceil(length / K_BLOCK), groups, engine.decodeWorkgroups);
      // The same buffers as bound above: a uniform's role keeps its buffer, only its bytes are rewritten.
      uniform("decode", PARAMS.decode, decodeFields(length, perSplit));
      uniform("merge", PARAMS.decodeMerge, mergeFields(splits));
      return splits;
    },
  };
}
