import {
  type BlockLayout,
  contiguousStrides,
  type DType,
  DTYPE_CODE,
  encodeParams,
  K_BLOCK,
  layoutOf,
  LOG2E,
  logicalStrides,
  type ParamSchema,
  type ParamValues,
  type Problem,
  Q_BLOCK,
  segments,
  type Shape4,
  shapeFor,
  type Tensor,
  valueLimit,
  WGSL_PARAMS,
} from "@sageattn/core";
import { grid1d, type PipelineCache } from "./pipelines.js";
import type { KernelName, Precision, UnrollCounts } from "./shaders.js";
import {
  chooseTile,
  INT8_PV_KEYS,
  int8Copies,
  int8TilesFirst,
  invocations,
  paddedHeadDim,
  type Tile,
} from "./tiles.js";
import { DispatchRecorder } from "./recorder.js";
import type { CallBuffers, ScratchPool } from "./scratch.js";
import { type BufferHandle, bytesPer } from "./tensors.js";
import { Usage } from "./usage.js";

const K_MEAN_CHUNKS = 16; // k_mean.wgsl's CHUNKS
// Each kernel's uniform block, laid out from core's schema (the build generates the WGSL structs from the same).
export const PARAMS = {
  kMean: layoutOf(WGSL_PARAMS.k_mean),
  packF16: layoutOf(WGSL_PARAMS.pack_f16),
  quantize: layoutOf(WGSL_PARAMS.quantize_int8),
  attention: layoutOf(WGSL_PARAMS.attention),
  store: layoutOf(WGSL_PARAMS.store_output),
  kvMean: layoutOf(WGSL_PARAMS.kv_mean),
  kvQuantizeK: layoutOf(WGSL_PARAMS.kv_quantize_k),
  decode: layoutOf(WGSL_PARAMS.attention_decode),
  decodeMerge: layoutOf(WGSL_PARAMS.decode_merge),
};
export const SCRATCH = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
export const CONSTANT = Usage.STORAGE | Usage.COPY_DST;
export const UNIFORM = Usage.UNIFORM | Usage.COPY_DST;

/** A limit the call would break; the caller turns it into DeviceError LimitExceeded. */
export class LimitError extends Error {}

/** A tensor as the kernels read it: a buffer, the element offset of element 0, and (b, h, n, d) strides. */
export interface Source {
  readonly buffer: GPUBuffer;
  readonly base: number;
  readonly strides: Shape4;
  readonly dtype: DType;
  /** Head dim (channels per row). */
  readonly d: number;
}

export interface Engine {
  readonly device: GPUDevice;
  readonly pipelines: PipelineCache;
  readonly scratch: ScratchPool;
  readonly shaderF16: boolean;
  readonly forcedTile?: string;
  /** Workgroups a decode step aims for (tiles.ts DECODE_TARGET_WORKGROUPS unless overridden). */
  readonly decodeWorkgroups: number;
  /** Keys from which non-causal INT8 calls run query tiles first (tiles.ts INT8_TILES_FIRST_MIN_KEYS unless overridden). */
  readonly tilesFirstMinKeys: number;
  /** Timestamp queries: when set, each dispatch gets its own pass and is timed. */
  readonly querySet?: GPUQuerySet;
}

/**
 * What one call encoded. Device in: `output` is a new buffer for the caller, or undefined when the store wrote into
 * the caller's `out`. Host in: the output (and the LSE, if asked) are copied into MAP_READ staging buffers by the
 * same submission, so no later call can overwrite them first.
 */
export interface Encoded {
  readonly output?: GPUBuffer;
  readonly outputStaging?: GPUBuffer;
  readonly outputBytes: number;
  readonly lseStaging?: GPUBuffer;
  readonly lseBytes: number;
  /** Where the call's buffers came from: staging buffers go back there once read. */
  readonly calls: CallBuffers;
  /** Buffers to destroy once submitted (the profile's resolve buffer). */
  readonly temporaries: GPUBuffer[];
  readonly commands: GPUCommandBuffer;
  /** Profiling: resolved timestamps to read after submit, and the kernel of each pair. */
  readonly profile?: { staging: GPUBuffer; names: string[] };
}

/** One dispatch of a plan. */
interface Step {
  readonly name: KernelName;
  readonly pipeline: GPUComputePipeline;
  readonly group: GPUBindGroup;
  readonly grid: readonly [number, number, number];
}

/** A uniform block or table a plan wrote, by role: written again only when another plan left other bytes there. */
interface Constant {
  readonly role: string;
  readonly bytes: Uint8Array;
  readonly usage: number;
}

/** A host input's scratch buffer and which of q, k, v fills it. */
interface HostInput {
  readonly buffer: GPUBuffer;
  readonly index: number;
}

/** Everything a call records, fixed for calls with the same key (see encodeAttention). */
interface Plan {
  readonly label: string;
  readonly steps: readonly Step[];
  readonly constants: readonly Constant[];
  readonly hostInputs: readonly HostInput[];
  readonly lse: GPUBuffer;
  /** Buffers zeroed before the dispatches: the LSE where it carries no row term in, pack_f16's wide-head flags. */
  readonly clears: readonly GPUBuffer[];
  /** The buffer the store writes: the caller's out, the host output scratch, or `owned`. */
  readonly output: GPUBuffer;
  /** A new output buffer the caller will own (device calls without `out`; such plans are not kept). */
  readonly owned?: GPUBuffer;
  readonly outputBytes: number;
  readonly lseBytes: number;
}

export const round4 = (bytes: number) => Math.max(4, Math.ceil(bytes / 4) * 4);

/**
 * lib/load_element.wgsl's constants for a source: its element type, and VEC where four channels from a multiple of
 * 4 are whole words (adjacent channels, D a multiple of 4, 16-bit rows starting on even elements).
 */
export function loadConstants(s: Source): Record<string, number> {
  const [sb, sh, sn, sd] = s.strides;
  const vec = sd === 1 && s.d % 4 === 0 && (s.dtype === "f32" || [s.base, sb, sh, sn].every((x) => x % 2 === 0));
  return { DTYPE: DTYPE_CODE[s.dtype], VEC: vec ? 1 : 0 };
}

/**
 * pack_f16's constants for a source: loadConstants', and where `flagWide`, WIDE_ABOVE at the |v| past which a block's
 * f16 P·V sum could overflow, so the kv heads holding such a V are flagged for f32 sums (pack_f16.wgsl).
 */
export function packConstants(s: Source, flagWide: boolean): Record<string, number> {
  return flagWide ? { ...loadConstants(s), WIDE_ABOVE: valueLimit("sage", "f16-block", "f32") } : loadConstants(s);
}

/** Copies a host tensor's elements into its scratch buffer (writeBuffer wants a multiple of 4 bytes). */
export function writeHost(engine: Engine, buffer: GPUBuffer, t: Tensor & { kind: "host" }): void {
  const bytes = round4(t.data.byteLength);
  let data: Float32Array | Uint16Array = t.data;
  if (data.byteLength !== bytes) {
    // An odd count of 16-bit elements gets one padding element.
    data = new Uint16Array(bytes / 2);
    data.set(t.data as Uint16Array);
  }
  engine.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, bytes);
}

function source(engine: Engine, calls: CallBuffers, t: Tensor, role: string): Source {
  const strides = logicalStrides(t);
  if (t.kind === "host") {
    const buffer = calls.scratch(role, round4(t.data.byteLength), SCRATCH);
    writeHost(engine, buffer, t);
    return { buffer, base: 0, strides, dtype: t.dtype, d: t.shape[3] };
  }
  const h = t.handle as BufferHandle;
  return { buffer: h.buffer, base: h.offset, strides, dtype: t.dtype, d: t.shape[3] };
}

/**
 * Throws LimitError when any buffer of the call would exceed one binding (or one buffer) of the device, before
 * anything is allocated. Splitting across bindings is not done: a clear error beats a silent wrong answer.
 */
function checkLimits(
  limits: GPUSupportedLimits,
  p: Problem,
  dp: number,
  exact: boolean,
  fused: boolean,
  inputs: Tensor[],
): void {
  const qRows = p.B * p.Hq * p.Nq;
  const kRows = p.B * p.Hkv * p.Nk;
  const need: Array<[string, number]> = [
    ...(fused ? [] : [["the f32 attention result", qRows * dp * 4] as [string, number]]),
    ["V as f16", kRows * dp * 2],
    ["the output", p.B * p.Hq * p.Nq * p.D * bytesPer(p.outputDtype)],
    ...(exact
      ? ([["Q as f16", qRows * dp * 2], ["K as f16", kRows * dp * 2]] as Array<[string, number]>)
      : ([["Q as int8", qRows * dp], ["K as int8", kRows * dp]] as Array<[string, number]>)),
    ...inputs.map((
      t,
      i,
    ): [string, number] => [
      `input ${"qkv"[i]}`,
      t.kind === "host" ? t.data.byteLength : (t.handle as BufferHandle).buffer.size,
    ]),
    ...(p.out?.kind === "device"
      ? [["the out tensor's buffer", (p.out.handle as BufferHandle).buffer.size] as [string, number]]
      : []),
  ];
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  for (const [what, bytes] of need) {
    if (bytes > limit) {
      throw new LimitError(`${what} needs ${bytes} bytes, over the device's limit of ${limit} bytes per binding`);
    }
  }
}

/**
 * Plans SageAttention (`exact` false) or exact attention on `engine` for a validated problem: K mean, Q/K
 * quantization and V to f16 (or Q/K/V to f16 for exact), the attention kernel, and the output store.
 */
function buildPlan(
  engine: Engine,
  calls: CallBuffers,
  p: Problem,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  exact: boolean,
): Plan {
  const { device, pipelines } = engine;
  const limits = device.limits;
  const f16Blocks = !exact && p.pvAccumulation === "f16-block";
  const precision: Precision = exact
    ? (engine.shaderF16 ? "f16" : "f32")
    : f16Blocks
    ? (engine.shaderF16 ? "f16" : "f16emu")
    : "f32";
  const dp = paddedHeadDim(p.D);
  const tile: Tile | undefined = chooseTile(
    exact ? "exact" : "int8",
    dp,
    precision,
    limits.maxComputeWorkgroupStorageSize,
    engine.forcedTile,
  );
  if (!tile) {
    throw new LimitError(
      `head dim ${p.D} needs more workgroup memory than the device's ${limits.maxComputeWorkgroupStorageSize} bytes`,
    );
  }

  const placement = outputPlacement(p);
  const [sb, sh, sn, sd] = placement.strides;
  // The INT8 kernel stores the output itself where each channel quad is whole vec2 words (see its file); otherwise
  // it leaves the f32 result to store_output.
  const align = p.outputDtype === "f32" ? 2 : 4;
  const fused = !exact && sd === 1 && p.D % 4 === 0 && [placement.base, sb, sh, sn].every((x) => x % align === 0);
  checkLimits(limits, p, dp, exact, fused, [q, k, v]);
  const steps: Step[] = [];
  const constants: Constant[] = [];
  const scratch = (bytes: number, what: string) => calls.scratch(what, bytes, SCRATCH);
  const constant = (role: string, bytes: Uint8Array, usage: number) => {
    constants.push({ role, bytes, usage });
    return calls.constant(role, bytes, usage);
  };
  const uniform = <S extends ParamSchema>(role: string, layout: BlockLayout<S>, values: ParamValues<S>) =>
    constant(role, encodeParams(layout, values), UNIFORM);
  const maxDim = limits.maxComputeWorkgroupsPerDimension;
  const checkGrid = (what: string, ...dims: number[]) => {
    if (dims.some((d) => d > maxDim)) {
      throw new LimitError(
        `${what} needs a grid of ${dims.join(" × ")} workgroups, over the device's ${maxDim} per dimension`,
      );
    }
  };

  const srcQ = source(engine, calls, q, "input q");
  const srcK = source(engine, calls, k, "input k");
  const srcV = source(engine, calls, v, "input v");

  const segs = segments(p);
  const nSeg = segs.length;
  const varlen = p.varlen !== undefined;
  const qBlocks = varlen ? segs.reduce((a, s) => a + Math.ceil(s.nq / Q_BLOCK), 0) : Math.ceil(p.Nq / Q_BLOCK);
  const kBlocks = varlen ? segs.reduce((a, s) => a + Math.ceil(s.nk / K_BLOCK), 0) : Math.ceil(p.Nk / K_BLOCK);
  const segWords = new Uint32Array(nSeg * 8);
  let qBase = 0;
  let kBase = 0;
  segs.forEach((s, i) => {
    segWords.set([s.b, s.q0, s.nq, s.k0, s.nk, varlen ? qBase : 0, varlen ? kBase : 0, 0], i * 8);
    qBase += Math.ceil(s.nq / Q_BLOCK);
    kBase += Math.ceil(s.nk / K_BLOCK);
  });
  const segBuffer = constant("segments", new Uint8Array(segWords.buffer), CONSTANT);
  const maxNq = Math.max(...segs.map((s) => s.nq));
  const maxNk = Math.max(...segs.map((s) => s.nk));

  const qRows = p.B * p.Hq * p.Nq;
  const kRows = p.B * p.Hkv * p.Nk;
  const lse = scratch(qRows * 4, "lse");
  const v16 = scratch(kRows * dp * 2, "V as f16");
  // f16 sums over a device V, which nothing on the host scanned (core's range rules cover host V): pack_f16 flags each
  // kv head holding some |v| over what a block's f16 sum can take, and the kernel sums those heads' tiles in f32.
  const widen = f16Blocks && v.kind === "device";
  const vWide = scratch(p.B * p.Hkv * 4, "kv heads with a wide V");

  // k_mean's partial sums; without smoothing nothing writes or reads them (the binding still needs a buffer).
  const kPartial = exact ? undefined : scratch(nSeg * p.Hkv * K_MEAN_CHUNKS * dp * 4, "K partial sums");
  const dispatch = (
    kernel: KernelName,
    prec: Precision,
    overrides: Record<string, number>,
    buffers: GPUBuffer[],
    grid: [number, number, number],
    counts?: UnrollCounts,
  ) => {
    const pipeline = pipelines.get(kernel, prec, overrides, counts);
    steps.push({ name: kernel, pipeline, group: calls.bindGroup(pipeline, buffers), grid });
  };
  const packF16 = (role: string, s: Source, heads: number, tokens: number, dst: GPUBuffer, flagWide = false) => {
    const quads = p.B * heads * tokens * (dp / 4);
    const g = grid1d(quads, maxDim);
    checkGrid("pack", g.x, g.y);
    const params = uniform(role, PARAMS.packF16, {
      strides: s.strides,
      base: s.base,
      heads,
      tokens,
      d: p.D,
      dp,
      quads,
      rowPitch: g.rowPitch,
      dstTokens: tokens,
      dstFirst: 0,
    });
    dispatch("pack_f16", "f32", packConstants(s, flagWide), [s.buffer, dst, params, vWide], [g.x, g.y, 1]);
  };
  packF16("pack v", srcV, p.Hkv, p.Nk, v16, widen);

  const hostOut = q.kind === "host";
  const { target, owned } = outputTarget(engine, calls, p, placement, hostOut);
  const result = fused ? target : scratch(qRows * dp * 4, "attention result");
  const attnParams = uniform("attention", PARAMS.attention, {
    hq: p.Hq,
    hkv: p.Hkv,
    group: p.group,
    nq: p.Nq,
    nk: p.Nk,
    qBlocks,
    kBlocks,
    kScaleOffset: p.B * p.Hq * qBlocks,
    returnLse: p.returnLse ? 1 : 0,
    logitScale: p.smScale * LOG2E,
    d: p.D,
    outBase: placement.base,
    outStrides: placement.strides,
  });
  const shape = { BQ: tile.bq, BK: tile.bk, DP: dp, CAUSAL: p.causal ? 1 : 0 };
  const tilesFirst = !exact && int8TilesFirst(p.causal, maxNk, engine.tilesFirstMinKeys);
  const attnConstants = exact ? shape : {
    ...shape,
    RQ: tile.rq,
    PV_KEYS: tile.pv ?? INT8_PV_KEYS,
    WG: invocations("int8", tile),
    STORE: fused ? 1 : 0,
    OUT_DTYPE: DTYPE_CODE[p.outputDtype],
    WIDEN: widen ? 1 : 0,
    TILES_FIRST: tilesFirst ? 1 : 0,
  };
  const counts: UnrollCounts = exact
    ? { RQ: tile.rq, CK: tile.bk / 16, QD: dp / 64, W: dp / 4, KV: (tile.bk * dp) / 4 / 256 }
    : {
      RQ: tile.rq,
      RP: tile.rq / 4,
      CK: tile.bk / 16,
      QD: dp / 64,
      W: dp / 16,
      PV_KEYS: tile.pv ?? INT8_PV_KEYS,
      ...int8Copies(tile, dp),
    };
  // The INT8 kernel takes heads first unless tilesFirst (see its file); the exact kernel query tiles first.
  const qTiles = Math.ceil(maxNq / tile.bq);
  const attnGrid: [number, number, number] = exact || tilesFirst ? [qTiles, p.Hq, nSeg] : [p.Hq, qTiles, nSeg];
  checkGrid("attention", ...attnGrid);

  if (exact) {
    const q16 = scratch(qRows * dp * 2, "Q as f16");
    const k16 = scratch(kRows * dp * 2, "K as f16");
    packF16("pack q", srcQ, p.Hq, p.Nq, q16);
    packF16("pack k", srcK, p.Hkv, p.Nk, k16);
    dispatch(
      "attention_exact",
      precision,
      attnConstants,
      [q16, k16, v16, segBuffer, result, lse, attnParams],
      attnGrid,
      counts,
    );
  } else if (kPartial) {
    const q8 = scratch(qRows * dp, "Q as int8");
    const k8 = scratch(kRows * dp, "K as int8");
    const kScaleOffset = p.B * p.Hq * qBlocks;
    const scales = scratch((kScaleOffset + p.B * p.Hkv * kBlocks) * 4, "scales");
    if (p.smoothK) {
      const params = uniform("k mean", PARAMS.kMean, {
        strides: srcK.strides,
        base: srcK.base,
        heads: p.Hkv,
        d: p.D,
        dp,
      });
      const grid: [number, number, number] = [(dp / 64) * K_MEAN_CHUNKS, p.Hkv, nSeg];
      checkGrid("k_mean", ...grid);
      dispatch("k_mean", "f32", loadConstants(srcK), [srcK.buffer, segBuffer, kPartial, params], grid);
    }
    const quantize = (s: Source, forQueries: boolean) => {
      const heads = forQueries ? p.Hq : p.Hkv;
      const block = forQueries ? Q_BLOCK : K_BLOCK;
      const params = uniform(forQueries ? "quantize q" : "quantize k", PARAMS.quantize, {
        strides: s.strides,
        base: s.base,
        heads,
        group: forQueries ? p.group : 1,
        kvHeads: p.Hkv,
        d: p.D,
        dp,
        nTotal: forQueries ? p.Nq : p.Nk,
        blocksTotal: forQueries ? qBlocks : kBlocks,
        scale: forQueries ? Math.fround(p.smScale * LOG2E) : 1,
        subtractMean: !forQueries && p.smoothK ? 1 : 0,
        rowBias: forQueries && p.returnLse && p.smoothK ? 1 : 0,
        forQueries: forQueries ? 1 : 0,
        scaleOffset: forQueries ? 0 : kScaleOffset,
        meanGiven: 0,
      });
      const grid: [number, number, number] = [Math.ceil((forQueries ? maxNq : maxNk) / block), heads, nSeg];
      checkGrid("quantize", ...grid);
      dispatch("quantize_int8", "f32", { ...loadConstants(s), BLOCK: block }, [
        s.buffer,
        segBuffer,
        kPartial,
        forQueries ? q8 : k8,
        scales,
        lse,
        params,
      ], grid);
    };
    quantize(srcK, false);
    quantize(srcQ, true);
    dispatch(
      "attention_int8",
      precision,
      attnConstants,
      [q8, k8, v16, scales, segBuffer, result, lse, attnParams, vWide],
      attnGrid,
      counts,
    );
  }
  if (!fused) {
    // Two 16-bit channels per u32 word when every row starts on a word and channels are adjacent.
    const pairs = p.outputDtype !== "f32" && sd === 1 && p.D % 2 === 0 &&
      [placement.base, sb, sh, sn].every((x) => x % 2 === 0);
    const threads = (p.B * p.Hq * p.Nq * p.D) / (pairs ? 2 : 1);
    const g = grid1d(threads, maxDim);
    const storeParams = uniform("store", PARAMS.store, {
      heads: p.Hq,
      tokens: p.Nq,
      d: p.D,
      dp,
      threads,
      rowPitch: g.rowPitch,
      base: placement.base,
      strides: placement.strides,
    });
    dispatch("store_output", "f32", { OUT_DTYPE: DTYPE_CODE[p.outputDtype], PAIRS: pairs ? 1 : 0 }, [
      result,
      target,
      storeParams,
    ], [g.x, g.y, 1]);
  }
  const hostInputs: HostInput[] = [];
  [srcQ, srcK, srcV].forEach((src, i) => {
    if ([q, k, v][i].kind === "host") hostInputs.push({ buffer: src.buffer, index: i });
  });
  return {
    label: exact ? "exact attention" : "sage attention",
    steps,
    constants,
    hostInputs,
    lse,
    output: target,
    owned,
    // The LSE buffer carries the smoothing row term in: zero it where the LSE is asked for and no term is written.
    clears: [...(p.returnLse && (exact || !p.smoothK) ? [lse] : []), ...(widen ? [vWide] : [])],
    outputBytes: p.B * p.Hq * p.Nq * p.D * bytesPer(p.outputDtype),
    lseBytes: p.B * p.Hq * p.Nq * 4,
  };
}

/**
 * A device tensor as the plan key sees it: the buffer (by identity), offset, dtype and strides; a host tensor by its
 * dtype, strides and size (its elements are written every call).
 */
export function tensorKey(t: Tensor | undefined): string {
  if (!t) return "-";
  if (t.kind === "host") return `h${t.dtype}${t.strides.join(",")}/${t.data.byteLength}`;
  const h = t.handle as BufferHandle;
  return `d${bufferId(h.buffer)}@${h.offset}${t.dtype}${t.strides.join(",")}`;
}

/**
 * A tensor as a kept plan whose uniforms carry the offset sees it: as tensorKey, but of a device tensor's offset
 * only its parity, which decides whether 16-bit rows are read as whole words (loadConstants' VEC).
 */
export function bufferKey(t: Tensor): string {
  if (t.kind === "host") return tensorKey(t);
  const h = t.handle as BufferHandle;
  return `d${bufferId(h.buffer)}@${h.offset % 2}${t.dtype}${t.strides.join(",")}`;
}

const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 0;
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, id = nextBufferId++);
  return id;
}

/**
 * Encodes one call: the plan of an identical earlier call (same shape, options, tensors' buffers and strides) is
 * replayed, with host inputs written again and uniforms rewritten only if another plan of the shape changed them;
 * otherwise a plan is built (and kept, unless the output is a new buffer or the call is varlen).
 */
export function encodeAttention(engine: Engine, p: Problem, q: Tensor, k: Tensor, v: Tensor, exact: boolean): Encoded {
  // Buffers, uniforms, bind groups and plans are kept per call shape: a repeated call allocates nothing.
  const calls = engine.scratch.forShape(
    `${exact ? "exact" : "sage"} ${p.B}x${p.Hq}x${p.Hkv}x${p.Nq}x${p.Nk}x${p.D} ${q.kind}`,
  );
  const cacheable = p.varlen === undefined && (q.kind === "host" || p.out !== undefined);
  const key = cacheable
    ? `${p.layout} ${p.outputDtype} ${p.causal} ${p.smScale} ${p.returnLse} ${p.pvAccumulation} ${p.smoothK} ${
      [q, k, v, p.out].map(tensorKey).join(" ")
    }`
    : undefined;
  let plan = key === undefined ? undefined : (calls.plans.get(key) as Plan | undefined);
  if (plan) {
    for (const c of plan.constants) calls.constant(c.role, c.bytes, c.usage);
    for (const h of plan.hostInputs) writeHost(engine, h.buffer, [q, k, v][h.index] as Tensor & { kind: "host" });
  } else {
    plan = buildPlan(engine, calls, p, q, k, v, exact);
    if (key !== undefined) calls.keepPlan(key, plan);
  }
  return record(engine, calls, plan, p.returnLse, q.kind === "host");
}

/** Records a plan into one command buffer: its buffers zeroed, the dispatches, and the read-back copies of host calls. */
function record(engine: Engine, calls: CallBuffers, plan: Plan, returnLse: boolean, hostOut: boolean): Encoded {
  const { device } = engine;
  const enc = device.createCommandEncoder({ label: plan.label });
  for (const b of plan.clears) enc.clearBuffer(b);
  const recorder = new DispatchRecorder(device, enc, engine.querySet);
  for (const s of plan.steps) recorder.dispatch(s.name, s.pipeline, s.group, s.grid);
  const profile = recorder.finish();
  const staging = (from: GPUBuffer, bytes: number) => {
    const b = calls.staging(round4(bytes), Usage.MAP_READ | Usage.COPY_DST);
    enc.copyBufferToBuffer(from, 0, b, 0, round4(bytes));
    return b;
  };
  return {
    output: plan.owned,
    outputStaging: hostOut ? staging(plan.output, plan.outputBytes) : undefined,
    outputBytes: plan.outputBytes,
    lseStaging: returnLse ? staging(plan.lse, plan.lseBytes) : undefined,
    lseBytes: plan.lseBytes,
    calls,
    temporaries: profile ? [profile.resolved] : [],
    commands: enc.finish(),
    profile,
  };
}

/** Where the output's elements go in its buffer: the element offset of element 0, and (b, h, n, d) strides. */
export interface Placement {
  readonly base: number;
  readonly strides: Shape4;
}

/** The caller's device `out` as it is (any strides, at its offset), else contiguous in the problem's layout. */
export function outputPlacement(p: Problem): Placement {
  if (p.out?.kind === "device") return { base: (p.out.handle as BufferHandle).offset, strides: logicalStrides(p.out) };
  return { base: 0, strides: logicalStrides({ layout: p.layout, strides: contiguousStrides(outputShape(p)) }) };
}

/**
 * The output's buffer: the caller's device `out`, the reused "output" scratch for host calls, or a new buffer the
 * caller owns for device calls.
 */
export function outputTarget(
  engine: Engine,
  calls: CallBuffers,
  p: Problem,
  placement: Placement,
  hostOut: boolean,
): { target: GPUBuffer; owned?: GPUBuffer } {
  if (p.out?.kind === "device") return { target: (p.out.handle as BufferHandle).buffer };
  const outputBytes = p.B * p.Hq * p.Nq * p.D * bytesPer(p.outputDtype);
  const size = Math.max(16, Math.ceil(outputBytes / 16) * 16);
  if (size > engine.device.limits.maxStorageBufferBindingSize) {
    throw new LimitError(`the output needs ${size} bytes, over the device's binding limit`);
  }
  if (hostOut) return { target: calls.scratch("output", size, SCRATCH) };
  const buffer = engine.device.createBuffer({ label: "attention output", size, usage: SCRATCH });
  return { target: buffer, owned: buffer };
}

/** The output's shape in the problem's layout. */
export const outputShape = (p: Problem): Shape4 => shapeFor(p.layout, { B: p.B, H: p.Hq, N: p.Nq, D: p.D });
