/**
 * The cpu-simd KV cache (issue 14): per (batch entry, kv head) a store in a reserved region of the backend's wasm
 * memory (layout in assembly/kv_cache.ts), appended to and re-quantized by assembly tasks, and few-query attention
 * over it split over key blocks (assembly/decode_int8.ts) with the worker pool taking split tasks, then merge tasks.
 */
import {
  type AttentionOutput,
  type BackendKvCache,
  DeviceError,
  dims,
  type HostTensor,
  type KvCacheSpec,
  LOG2E,
  type Problem,
  qFold,
  type Tensor,
} from "@sageattn/core";
import { Effect } from "effect";
import { COUNTER_AT, type Engine } from "./engine.js";
import { readCanonical, writeCanonical } from "./io.js";
import { poisonQueryRows } from "./poison.js";
import { paddedHeadDim } from "./plan.js";
import type { WorkerPool } from "./pool.js";
import {
  C,
  CACHE_RECORD_BYTES,
  DECODE_RECORD_BYTES,
  DR,
  KEY_BLOCK,
  MERGE_RECORD_BYTES,
  MR,
  type TaskKind,
} from "./records.js";

/**
 * Key blocks per split task (32 blocks = 2048 keys). Splits depend on the cache's length only, never on the thread
 * count, so a result is the same on any number of threads. At 2048 keys a split reads 256 KiB of K and V (D=128),
 * far more than the merge costs; Nk 32K gives 16 splits per row tile. Measured on the 2-core dev VM (2026-12-03,
 * B1 H32 Hkv8 D128 Nk 32K, Node): 16, 32 and 64 within noise of each other.
 */
export const SPLIT_BLOCKS = 32;

/** Work (rows × D, K and V) below which an append or a requantize runs on the calling thread alone. */
const MIN_THREADED_ROW_ELEMENTS = 1 << 18;
/** Decode flops (4·Hq·Nq·Nk·D) below which an attend runs on the calling thread alone. */
const MIN_THREADED_FLOPS = 4e6;

/** What the cache needs from the backend that owns it. */
export interface CacheHost {
  readonly engine: Engine;
  readonly lock: Effect.Semaphore;
  readonly pool: () => WorkerPool | undefined;
  readonly threads: number;
  readonly disposed: () => boolean;
  readonly error: (
    reason: "KernelFailed" | "OutOfMemory" | "Disposed",
    message: string,
    cause?: unknown,
  ) => DeviceError;
  /** Key blocks per split (SPLIT_BLOCKS unless a test asks for smaller splits). */
  readonly splitBlocks: number;
}

const align = (x: number) => Math.ceil(x / 64) * 64;

/** Byte offsets inside one head's store, and its size. */
function headLayout(capacity: number, Dp: number) {
  const blocks = Math.ceil(capacity / KEY_BLOCK);
  let at = 0;
  const take = (bytes: number) => {
    const here = at;
    at = align(at + bytes);
    return here;
  };
  const mean = take(Dp * 4);
  const k = take(blocks * KEY_BLOCK * Dp); // i8
  const sK = take(blocks * 4);
  const v = take(blocks * KEY_BLOCK * Dp * 2);
  const sV = take(blocks * Dp * 4);
  const kRaw = take(KEY_BLOCK * Dp * 4);
  const vRaw = take(KEY_BLOCK * Dp * 4);
  return { mean, k, sK, v, sV, kRaw, vRaw, bytes: at };
}

/** A bump allocator over the call arena (above every reserved region). */
function arena(base: number) {
  let at = align(base);
  return {
    take(bytes: number): number {
      const here = at;
      at = align(at + bytes);
      return here;
    },
    get end() {
      return at;
    },
  };
}

/** Makes an empty cache for `spec` in a region of the backend's memory (reserved now, for the whole capacity). */
export function makeKvCache(host: CacheHost, spec: KvCacheSpec): Effect.Effect<BackendKvCache, DeviceError> {
  const { engine } = host;
  const kernels = engine.kernels;
  const Dp = paddedHeadDim(spec.headDim);
  const BH = spec.batch * spec.headsKv;
  const head = headLayout(spec.capacity, Dp);
  const scratchBytes = align(kernels.scratchBytes(Dp));
  let region = -1;
  let length = 0;
  let gone = false;

  const at = (h: number, field: keyof ReturnType<typeof headLayout>) => region + h * head.bytes + head[field];

  /** Runs one batch of tasks (then optionally a second) on the pool when the work is worth waking it, else here. */
  const runTasks = async (
    batches: { fn: TaskKind; table: number; count: number }[],
    scratch: number,
    threaded: boolean,
  ) => {
    const pool = host.pool();
    if (!threaded || !pool) {
      for (const b of batches) for (let t = 0; t < b.count; t++) kernels[b.fn](b.table, t, scratch);
      return;
    }
    await pool.run(
      batches,
      engine.memory,
      COUNTER_AT,
      scratch,
      scratchBytes,
      (b, t) => kernels[batches[b].fn](batches[b].table, t, scratch),
    );
  };

  /** The lock, the disposed checks, and DeviceError for anything a kernel or the host throws. */
  const guarded = <A>(what: string, body: () => Promise<A> | A): Effect.Effect<A, DeviceError> =>
    host.lock.withPermits(1)(
      Effect.suspend(() => {
        if (gone) return Effect.fail(host.error("Disposed", "this KV cache was disposed"));
        if (host.disposed()) return Effect.fail(host.error("Disposed", "the cpu-simd backend was disposed"));
        return Effect.tryPromise({
          try: async () => body(),
          catch: (
            e,
          ) => (e instanceof DeviceError
            ? e
            : e instanceof RangeError
            ? host.error("OutOfMemory", `${what}: ${e.message}`, e)
            : host.error("KernelFailed", `${what} failed: ${String(e)}`, e)),
        });
      }),
    );

  /** Grows memory for a call's arena, as an OutOfMemory DeviceError when the runtime refuses. */
  const ensure = (end: number, what: string) => {
    if (end > 2 ** 32) {
      throw host.error(
        "OutOfMemory",
        `${what} needs ${(end / 2 ** 30).toFixed(2)} GiB of wasm memory, over the 4 GiB a wasm32 memory holds`,
      );
    }
    try {
      engine.ensure(end);
    } catch (e) {
      throw host.error(
        "OutOfMemory",
        `${what} needs ${(end / 2 ** 20).toFixed(0)} MiB of wasm memory, which this runtime refused`,
        e,
      );
    }
  };

  /** Writes one cache record per head (for append: the rows at kIn/vIn, n per head). */
  const writeCacheRecords = (table: number, n: number, kIn: number, vIn: number) => {
    const i32 = engine.i32;
    for (let h = 0; h < BH; h++) {
      const r = (table + h * CACHE_RECORD_BYTES) >>> 2;
      i32[r + C.Dp / 4] = Dp;
      i32[r + C.len / 4] = length;
      i32[r + C.n / 4] = n;
      i32[r + C.first / 4] = length === 0 ? 1 : 0;
      i32[r + C.smooth / 4] = spec.smoothK ? 1 : 0;
      i32[r + C.mean / 4] = at(h, "mean");
      i32[r + C.k / 4] = at(h, "k");
      i32[r + C.sK / 4] = at(h, "sK");
      i32[r + C.v / 4] = at(h, "v");
      i32[r + C.sV / 4] = at(h, "sV");
      i32[r + C.kRaw / 4] = at(h, "kRaw");
      i32[r + C.vRaw / 4] = at(h, "vRaw");
      i32[r + C.kIn / 4] = kIn + h * n * Dp * 4;
      i32[r + C.vIn / 4] = vIn + h * n * Dp * 4;
    }
  };

  const append = (k: Tensor, v: Tensor) =>
    guarded("append", async () => {
      if (k.kind !== "host" || v.kind !== "host") {
        throw host.error("KernelFailed", "cpu-simd takes host tensors (its memory is the host's)");
      }
      const n = dims(k).N;
      const threaded = n * BH * Dp >= MIN_THREADED_ROW_ELEMENTS;
      const a = arena(engine.arenaBase);
      const kIn = a.take(BH * n * Dp * 4), vIn = a.take(BH * n * Dp * 4);
      const table = a.take(BH * CACHE_RECORD_BYTES);
      const scratch = a.take((threaded ? host.threads : 1) * scratchBytes);
      ensure(a.end, "the append");
      const f32 = engine.f32;
      writeCanonical(k, f32, kIn >>> 2, Dp);
      writeCanonical(v, f32, vIn >>> 2, Dp);
      writeCacheRecords(table, n, kIn, vIn);
      await runTasks([{ fn: "cacheAppend", table, count: BH }], scratch, threaded);
      length += n;
    });

  const requantize = guarded("requantize", async () => {
    if (length === 0) return;
    const threaded = length * BH * Dp >= MIN_THREADED_ROW_ELEMENTS;
    const a = arena(engine.arenaBase);
    const table = a.take(BH * CACHE_RECORD_BYTES);
    const scratch = a.take((threaded ? host.threads : 1) * scratchBytes);
    ensure(a.end, "requantize");
    writeCacheRecords(table, 0, 0, 0);
    await runTasks([{ fn: "cacheRequantize", table, count: BH }], scratch, threaded);
  });

  const attend = (p: Problem, q: Tensor): Effect.Effect<AttentionOutput, DeviceError> =>
    guarded("attend", async () => {
      if (q.kind !== "host") throw host.error("KernelFailed", "cpu-simd takes host tensors (its memory is the host's)");
      const { B, Hq, Nq, group } = p;
      const len = p.Nk;
      const tileRows = kernels.tileRows();
      // Row tiles per (b, kv head): whole heads of the group stacked while they fit, else one head's rows in tiles.
      const tiles: { h0: number; nh: number; i0: number; nr: number }[] = [];
      if (Nq <= tileRows) {
        const per = Math.max(1, Math.min(group, Math.floor(tileRows / Nq)));
        for (let h0 = 0; h0 < group; h0 += per) tiles.push({ h0, nh: Math.min(per, group - h0), i0: 0, nr: Nq });
      } else {for (let h0 = 0; h0 < group; h0++) {
          for (let i0 = 0; i0 < Nq; i0 += tileRows) tiles.push({ h0, nh: 1, i0, nr: Math.min(tileRows, Nq - i0) });
        }}
      const blocks = Math.ceil(len / KEY_BLOCK);
      const splits = Math.ceil(blocks / host.splitBlocks);
      const units = BH * tiles.length;
      const partBytes = align(tileRows * Dp * 4 + tileRows * 8);
      const threaded = 4 * B * Hq * Nq * len * p.D >= MIN_THREADED_FLOPS;
      const a = arena(engine.arenaBase);
      const qAt = a.take(B * Hq * Nq * Dp * 4);
      const out = a.take(B * Hq * Nq * Dp * 4);
      const stats = p.returnLse ? a.take(B * Hq * Nq * 12) : 0;
      const parts = a.take(units * splits * partBytes);
      const splitTable = a.take(units * splits * DECODE_RECORD_BYTES);
      const mergeTable = a.take(units * MERGE_RECORD_BYTES);
      const scratch = a.take((threaded ? host.threads : 1) * scratchBytes);
      ensure(a.end, "attend");
      const f32 = engine.f32, i32 = engine.i32;
      writeCanonical(q, f32, qAt >>> 2, Dp);
      const fold = qFold(p.smScale);
      let unit = 0;
      for (let b = 0; b < B; b++) {
        for (let kvh = 0; kvh < spec.headsKv; kvh++) {
          const h = b * spec.headsKv + kvh;
          for (const t of tiles) {
            const row0 = (b * Hq + kvh * group + t.h0) * Nq + t.i0;
            const part0 = parts + unit * splits * partBytes;
            for (let s = 0; s < splits; s++) {
              const r = (splitTable + (unit * splits + s) * DECODE_RECORD_BYTES) >>> 2;
              i32[r + DR.q / 4] = qAt + (row0 - t.i0) * Dp * 4; // row 0 of the tile's first head
              i32[r + DR.nq / 4] = Nq;
              i32[r + DR.i0 / 4] = t.i0;
              i32[r + DR.nr / 4] = t.nr;
              i32[r + DR.nh / 4] = t.nh;
              i32[r + DR.k / 4] = at(h, "k");
              i32[r + DR.sK / 4] = at(h, "sK");
              i32[r + DR.v / 4] = at(h, "v");
              i32[r + DR.sV / 4] = at(h, "sV");
              i32[r + DR.nk / 4] = len;
              i32[r + DR.kb0 / 4] = s * host.splitBlocks;
              i32[r + DR.kb1 / 4] = Math.min(blocks, (s + 1) * host.splitBlocks);
              i32[r + DR.part / 4] = part0 + s * partBytes;
              i32[r + DR.causal / 4] = p.causal ? 1 : 0;
              i32[r + DR.Dp / 4] = Dp;
              f32[r + DR.fold / 4] = fold;
            }
            const m = (mergeTable + unit * MERGE_RECORD_BYTES) >>> 2;
            i32[m + MR.part / 4] = part0;
            i32[m + MR.splits / 4] = splits;
            i32[m + MR.rows / 4] = t.nh * t.nr;
            i32[m + MR.out / 4] = out + row0 * Dp * 4;
            i32[m + MR.stats / 4] = stats ? stats + row0 * 12 : 0;
            i32[m + MR.q / 4] = qAt + row0 * Dp * 4;
            i32[m + MR.kmean / 4] = spec.smoothK ? at(h, "mean") : 0;
            i32[m + MR.Dp / 4] = Dp;
            i32[m + MR.partBytes / 4] = partBytes;
            unit++;
          }
        }
      }
      await runTasks(
        [
          { fn: "decodeSplit", table: splitTable, count: units * splits },
          { fn: "decodeMergeTile", table: mergeTable, count: units },
        ],
        scratch,
        threaded,
      );
      const view = engine.f32;
      const output: HostTensor = readCanonical(
        view,
        out >>> 2,
        { B, H: Hq, N: Nq, D: p.D },
        Dp,
        p.outputDtype,
        p.layout,
      );
      let lse: Float32Array | undefined;
      if (p.returnLse) {
        lse = new Float32Array(B * Hq * Nq);
        const s0 = stats >>> 2;
        for (let r = 0; r < lse.length; r++) {
          const mx = view[s0 + 3 * r], l = view[s0 + 3 * r + 1], qm = view[s0 + 3 * r + 2];
          lse[r] = l > 0 ? (mx + Math.log2(l)) / LOG2E + p.smScale * qm : -Infinity;
        }
      }
      if (!p.validated) poisonQueryRows(p, view, qAt >>> 2, Dp, output, lse);
      return lse ? { output, lse } : { output };
    });

  const dispose = host.lock.withPermits(1)(
    Effect.sync(() => {
      if (gone) return;
      gone = true;
      if (region >= 0) engine.release(region);
    }),
  );

  return host.lock.withPermits(1)(
    Effect.suspend(() => {
      if (host.disposed()) return Effect.fail(host.error("Disposed", "the cpu-simd backend was disposed"));
      const bytes = BH * head.bytes;
      return Effect.try({
        try: () => {
          // Nothing in the store is read before an append writes it (the first append writes the means).
          region = engine.reserve(bytes);
          return { append, attend, requantize, dispose } satisfies BackendKvCache;
        },
        catch: (e) =>
          host.error(
            "OutOfMemory",
            `a KV cache of ${
              (bytes / 2 ** 20).toFixed(0)
            } MiB (capacity ${spec.capacity}) does not fit in wasm memory: ${String(e)}`,
            e,
          ),
      });
    }),
  );
}
