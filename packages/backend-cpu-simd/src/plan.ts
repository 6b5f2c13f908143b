import { type Problem, qFold, segments } from "@sageattn/core";
import { ARENA_BASE } from "./engine.js";
import { A, ATTN_RECORD_BYTES, KEY_BLOCK, KV_RECORD_BYTES, P } from "./records.js";

/** Where one call's data lives in wasm memory (byte addresses) and its task tables. */
export interface Plan {
  readonly exact: boolean;
  readonly Dp: number;
  readonly q: number;
  readonly k: number;
  readonly v: number;
  readonly out: number;
  /** f32 [B·Hq·Nq][3] row statistics (0 without LSE). */
  readonly stats: number;
  readonly mask: number;
  /** Start of the per-(segment, kv head) quantized K/V region. */
  readonly kvData: number;
  readonly kvTable: number;
  readonly kvCount: number;
  readonly attnTable: number;
  readonly attnCount: number;
  readonly scratch: number;
  readonly scratchBytes: number;
  /** One past the last byte used. */
  readonly end: number;
}

const align = (x: number, a = 64) => Math.ceil(x / a) * a;

/** Head dim rounded up to the kernels' channel step (8 channels per micro-kernel column). */
export const paddedHeadDim = (D: number) => Math.ceil(D / 8) * 8;

function kvBytesFor(nk: number, Dp: number, exact: boolean): number {
  const blocks = Math.ceil(nk / KEY_BLOCK);
  return align(Dp * 4) + align(blocks * KEY_BLOCK * Dp * (exact ? 4 : 2)) + align(blocks * 4) +
    align(blocks * KEY_BLOCK * Dp * 2) + align(blocks * Dp * 4);
}

/**
 * Lays out a call in memory from `base` (ARENA_BASE, or above the backend's KV caches). Records are written later by
 * `writeRecords` once memory is big enough.
 */
export function planCall(
  p: Problem,
  exact: boolean,
  threads: number,
  scratchBytes: number,
  tileRows: number,
  base = ARENA_BASE,
): Plan {
  const Dp = paddedHeadDim(p.D);
  let at = base;
  const take = (bytes: number) => {
    const here = at;
    at = align(at + bytes);
    return here;
  };
  const q = take(p.B * p.Hq * p.Nq * Dp * 4);
  const k = take(p.B * p.Hkv * p.Nk * Dp * 4);
  const v = take(p.B * p.Hkv * p.Nk * Dp * 4);
  const out = take(p.B * p.Hq * p.Nq * Dp * 4);
  const stats = p.returnLse ? take(p.B * p.Hq * p.Nq * 12) : 0;
  const mask = p.mask ? take(p.mask.data.byteLength) : 0;
  const segs = segments(p);
  const kvCount = segs.length * p.Hkv;
  let attnCount = 0;
  for (const s of segs) attnCount += p.Hq * Math.ceil(s.nq / tileRows);
  // Per (segment, kv head): kmean, K blocks, sK, V blocks, sV, in writeRecords' order.
  let kvBytes = 0;
  for (const s of segs) kvBytes += p.Hkv * kvBytesFor(s.nk, Dp, exact);
  const kvData = take(kvBytes);
  const kvTable = take(kvCount * KV_RECORD_BYTES);
  const attnTable = take(attnCount * ATTN_RECORD_BYTES);
  const scratch = take(threads * align(scratchBytes));
  return {
    exact,
    Dp,
    q,
    k,
    v,
    out,
    stats,
    mask,
    kvData,
    kvTable,
    kvCount,
    attnTable,
    attnCount,
    scratch,
    scratchBytes: align(scratchBytes),
    end: at,
  };
}

/** wasm32 memory ends at 4 GiB: every byte address must be below it (JS turns addresses into indices with `>>> 2`). */
export const WASM_MEMORY_LIMIT = 2 ** 32;
/**
 * The kernels compute a mask element's offset from its slice start in i32: one (batch, head) mask slice must stay
 * under 2 GiB. (Every other i32 offset, inside one head's rows or a task table, is implied below 2 GiB by the 4 GiB
 * limit: Q and the output, or K and V, take a head's rows twice.)
 */
export const SLICE_LIMIT = 2 ** 31;

/** Why a plan cannot run (checked before memory grows or anything is written), or undefined when it can. */
export function planLimit(
  p: Problem,
  plan: Plan,
): { reason: "OutOfMemory" | "LimitExceeded"; message: string } | undefined {
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (plan.end > WASM_MEMORY_LIMIT) {
    return {
      reason: "OutOfMemory",
      message: `the call needs ${gib(plan.end)} of wasm memory, over the 4 GiB a wasm32 memory can hold`,
    };
  }
  const maskSlice = p.mask ? p.Nq * p.Nk * (p.mask.kind === "boolean" ? 1 : 4) : 0;
  if (maskSlice >= SLICE_LIMIT) {
    return {
      reason: "LimitExceeded",
      message: `one mask slice takes ${gib(maskSlice)}; the kernels' mask offsets reach 2 GiB`,
    };
  }
  return undefined;
}

/** Fills both task tables. Attention tasks go longest first (causal tiles near the end see the most keys). */
export function writeRecords(plan: Plan, p: Problem, i32: Int32Array, f32: Float32Array, tileRows: number): void {
  const { Dp, exact } = plan;
  const segs = segments(p);
  let at = plan.kvData;
  const take = (bytes: number) => {
    const here = at;
    at = align(at + bytes);
    return here;
  };
  // kv records, one per (segment, kv head)
  const kvRec: { kmean: number; kq: number; sK: number; vq: number; sV: number }[] = [];
  let r = plan.kvTable >>> 2;
  segs.forEach((s) => {
    const blocks = Math.ceil(s.nk / KEY_BLOCK);
    for (let kvh = 0; kvh < p.Hkv; kvh++) {
      const rows = ((s.b * p.Hkv + kvh) * p.Nk + s.k0) * Dp * 4;
      const rec = {
        kmean: take(Dp * 4),
        kq: take(blocks * KEY_BLOCK * Dp * (exact ? 4 : 2)),
        sK: take(blocks * 4),
        vq: take(blocks * KEY_BLOCK * Dp * 2),
        sV: take(blocks * Dp * 4),
      };
      kvRec.push(rec);
      i32[r + P.k / 4] = plan.k + rows;
      i32[r + P.v / 4] = plan.v + rows;
      i32[r + P.nk / 4] = s.nk;
      i32[r + P.kmean / 4] = rec.kmean;
      i32[r + P.kOut / 4] = rec.kq;
      i32[r + P.sK / 4] = rec.sK;
      i32[r + P.vOut / 4] = rec.vq;
      i32[r + P.sV / 4] = rec.sV;
      i32[r + P.Dp / 4] = Dp;
      i32[r + P.smooth / 4] = p.smoothK ? 1 : 0;
      r += KV_RECORD_BYTES / 4;
    }
  });
  const fold = qFold(p.smScale);
  const m = p.mask;
  const maskKind = !m ? 0 : m.kind === "boolean" ? 1 : 2;
  const elem = maskKind === 1 ? 1 : 4;
  let t = plan.attnTable >>> 2;
  segs.forEach((s, si) => {
    const tiles = Math.ceil(s.nq / tileRows);
    for (let h = 0; h < p.Hq; h++) {
      const kvh = Math.floor(h / p.group);
      const kv = kvRec[si * p.Hkv + kvh];
      const qRows = ((s.b * p.Hq + h) * p.Nq + s.q0) * Dp * 4;
      const kRows = ((s.b * p.Hkv + kvh) * p.Nk + s.k0) * Dp * 4;
      let maskAt = 0;
      if (m) {
        const [mb, mh] = m.shape;
        maskAt = plan.mask + ((((mb === 1 ? 0 : s.b) * mh + (mh === 1 ? 0 : h)) * p.Nq + s.q0) * p.Nk + s.k0) * elem;
      }
      for (let tile = tiles - 1; tile >= 0; tile--) {
        const i0 = tile * tileRows;
        i32[t + A.q / 4] = plan.q + qRows;
        i32[t + A.nq / 4] = s.nq;
        i32[t + A.i0 / 4] = i0;
        i32[t + A.rows / 4] = Math.min(tileRows, s.nq - i0);
        i32[t + A.k / 4] = kv.kq;
        i32[t + A.sK / 4] = kv.sK;
        i32[t + A.v / 4] = exact ? plan.v + kRows : kv.vq;
        i32[t + A.sV / 4] = kv.sV;
        i32[t + A.nk / 4] = s.nk;
        i32[t + A.out / 4] = plan.out + qRows;
        i32[t + A.stats / 4] = plan.stats ? plan.stats + ((s.b * p.Hq + h) * p.Nq + s.q0) * 12 : 0;
        i32[t + A.kmean / 4] = exact || !p.smoothK ? 0 : kv.kmean;
        i32[t + A.mask / 4] = maskAt;
        i32[t + A.maskKind / 4] = maskKind;
        i32[t + A.maskStride / 4] = p.Nk;
        i32[t + A.causal / 4] = p.causal ? 1 : 0;
        i32[t + A.Dp / 4] = Dp;
        f32[t + A.fold / 4] = fold;
        t += ATTN_RECORD_BYTES / 4;
      }
    }
  });
}
