import { K_BLOCK } from "@sageattn/core";
import type { Precision } from "./shaders.js";

/**
 * The attention kernels' workgroup tile: query rows and keys per tile, and query rows per invocation (`rq`: the
 * INT8 kernel's register block, 4 or 8; the exact kernel always uses bq / 16).
 */
export interface Tile {
  readonly bq: number;
  readonly bk: number;
  readonly rq: number;
  /** INT8 kernel: keys per unrolled P·V step (4, 8 or 16, at most bk); INT8_PV_KEYS where not forced. */
  readonly pv?: number;
}

type Shape = Omit<Tile, "rq" | "pv">;

// Preferred first. INT8 kernel: the key tile is the 64-key K block (DESIGN §2 step 2, summed per block in step 5) (f16 P·V then sums exactly
// one block, as the sage oracle does), with fewer query rows where workgroup memory is short; smaller key tiles
// only where even 16 rows do not fit (large D on 32 KiB adapters); 64×64 measured fastest on the H200 (NOTES.md).
// Exact kernel: BQ 64 × BK 32 first.
const INT8_TILES: readonly Shape[] = [
  { bq: 64, bk: 64 },
  { bq: 32, bk: 64 },
  { bq: 16, bk: 64 },
  { bq: 64, bk: 32 },
  { bq: 32, bk: 32 },
  { bq: 16, bk: 32 },
  { bq: 64, bk: 16 },
  { bq: 32, bk: 16 },
  { bq: 16, bk: 16 },
];
const EXACT_TILES: readonly Shape[] = [
  { bq: 64, bk: 32 },
  { bq: 64, bk: 64 },
  { bq: 32, bk: 32 },
  { bq: 64, bk: 16 },
  { bq: 32, bk: 16 },
  { bq: 16, bk: 16 },
];

/** Head dim padded the way the kernels store rows: a multiple of 64 (so each of 16 threads owns whole quads). */
export const paddedHeadDim = (d: number) => Math.ceil(d / 64) * 64;

/**
 * Query rows per invocation of the INT8 kernel, tried first (the other count, 8 or 4, second). 4 at every head dim:
 * 8 rows halve the workgroup-memory reads per multiply-add but double the registers, so fewer warps hide latency;
 * 4 measured faster on the H200 (NOTES.md). (At DP > 128, 8 rows would also hold 96–128 accumulator registers.)
 */
export const INT8_ROWS_PER_INVOCATION: number = 4;

/**
 * Keys per unrolled step of the INT8 kernel's P·V loop (PV_KEYS): 16, 3–4 % faster than 8 on an H100 with the
 * preferred 64x64 tile at every size, causal and D 64 included (NOTES.md, 2026-12-06); 4 and 8 stay selectable
 * through a forced tile ("64x64r4p8").
 */
export const INT8_PV_KEYS: number = 16;

/**
 * Non-causal calls with at least this many keys (the longest segment's) run the INT8 kernel's query tiles first
 * (TILES_FIRST): the workgroups resident at once then read a few heads' K and V, which stay in L2, instead of every
 * head's. Measured on an H100 at B1 H32 D128 only (no GQA): 2–3 % faster at 4096 and 16384 keys and 3.5 % slower at
 * 1024 (all of K and V fits in L2 there); causal calls keep heads first, which balances their uneven tiles (5 %
 * slower otherwise). NOTES.md, 2026-12-06.
 */
export const INT8_TILES_FIRST_MIN_KEYS: number = 4096;

/** Whether the INT8 kernel runs its query tiles first (grid (query tiles, heads, segments)) for this call. */
export const int8TilesFirst = (causal: boolean, maxNk: number, minKeys = INT8_TILES_FIRST_MIN_KEYS): boolean =>
  !causal && maxNk >= minKeys;

/** Invocations per workgroup of a tile's kernel. */
export const invocations = (kernel: "int8" | "exact", t: Tile) => (kernel === "int8" ? (t.bq / t.rq) * 16 : 256);

/** Workgroup memory the attention kernel declares for a tile (mirrors the `var<workgroup>` arrays). */
export function workgroupBytes(kernel: "int8" | "exact", t: Shape, dp: number, precision: Precision): number {
  if (kernel === "int8") {
    const qTile = t.bq * dp;
    const kTile = t.bk * (dp + 16); // one spare vec4 per key
    const vTile = t.bk * dp * 2;
    const pTile = t.bk * (t.bq / 4 + 1) * 8; // four f16 rows per 8 bytes, one spare per key, on every path
    const rowParts = 16 * (t.bq / 4 + 1) * 16;
    return qTile + kTile + vTile + pTile + rowParts;
  }
  const qTile = t.bq * dp * 2;
  const kTile = t.bk * (dp * 2 + 8); // one spare quad per key
  const vTile = t.bk * dp * 2;
  const pTile = precision === "f16" ? (t.bq + 4) * t.bk * 2 : t.bq * t.bk * 4; // P_PAD 4 f16, or f32 unpadded
  const rowParts = t.bq * 64;
  return qTile + kTile + vTile + pTile + rowParts;
}

/**
 * Words of Q, K and V each invocation of the INT8 kernel copies into workgroup memory (QL per workgroup, KL and VL
 * per key tile): the K and V ones are held in registers a tile ahead, so they are capped at 8 and 32.
 */
export function int8Copies(t: Tile, dp: number): { QL: number; KL: number; VL: number } {
  const wg = invocations("int8", t);
  return {
    QL: Math.ceil((t.bq * dp) / 16 / wg),
    KL: Math.ceil((t.bk * dp) / 16 / wg),
    VL: Math.ceil((t.bk * dp) / 4 / wg),
  };
}

function fitsInt8(t: Tile, dp: number): boolean {
  const c = int8Copies(t, dp);
  const pv = t.pv ?? INT8_PV_KEYS;
  return [4, 8].includes(t.rq) && t.rq <= t.bq && invocations("int8", t) <= 256 && c.KL <= 8 && c.VL <= 32 &&
    [4, 8, 16].includes(pv) && pv <= t.bk;
}

/**
 * The first preferred tile that fits `limit` bytes of workgroup memory, or a forced one where it fits: "64x32",
 * or for the INT8 kernel "64x64r4" (rows per invocation too) or "64x64r4p8" (and keys per P·V step). An INT8 shape
 * is tried with the preferred rows per invocation first, then with the other count.
 */
export function chooseTile(
  kernel: "int8" | "exact",
  dp: number,
  precision: Precision,
  limit: number,
  forced?: string,
): Tile | undefined {
  const m = forced?.match(/^(\d+)x(\d+)(?:r(\d+)(?:p(\d+))?)?$/);
  const preferred = kernel === "int8" ? INT8_TILES : EXACT_TILES;
  const shapes: Shape[] = m ? [{ bq: Number(m[1]), bk: Number(m[2]) }, ...preferred] : [...preferred];
  const candidates: Tile[] = shapes.flatMap((s, i): Tile[] => {
    if (kernel === "exact") return [{ ...s, rq: s.bq / 16 }];
    const rq = INT8_ROWS_PER_INVOCATION;
    if (i === 0 && m?.[4]) return [{ ...s, rq: Number(m[3]), pv: Number(m[4]) }];
    if (i === 0 && m?.[3]) return [{ ...s, rq: Number(m[3]) }];
    return [{ ...s, rq }, { ...s, rq: rq === 8 ? 4 : 8 }];
  });
  return candidates.find(
    (t) =>
      [16, 32, 64].includes(t.bq) && [16, 32, 64].includes(t.bk) && (kernel === "exact" || fitsInt8(t, dp)) &&
      workgroupBytes(kernel, t, dp, precision) <= limit,
  );
}

/**
 * Every INT8 tile the kernel runs at head dim `dp` within `limit` bytes: shapes × rows per invocation × keys per
 * P·V step (bench/table.ts --sweep times them all).
 */
export function int8Tiles(dp: number, limit: number): Tile[] {
  return INT8_TILES.flatMap((s) => [4, 8].flatMap((rq) => [4, 8, 16].map((pv): Tile => ({ ...s, rq, pv }))))
    .filter((t) => fitsInt8(t, dp) && workgroupBytes("int8", t, dp, "f16") <= limit);
}

/** The forced-tile string of an INT8 tile, "64x64r4p4" (chooseTile reads it back). */
export const int8TileName = (t: Tile) => `${t.bq}x${t.bk}r${t.rq}p${t.pv ?? INT8_PV_KEYS}`;

/**
 * Decode (attention_decode.wgsl): workgroups aimed for per step. Each takes one (b, kv head), up to 32 query rows
 * and a range of 64-key blocks; the ranges shrink until about this many workgroups run (never below one block), so
 * a long cache is read by many workgroups at once and decode_merge adds at most this many partial rows per row.
 * 1024: about eight 256-invocation workgroups on each of the H200's 132 SMs. Not yet measured on a GPU:
 * `makeWith({ decodeWorkgroups })` or `SAGEATTN_WEBGPU_DECODE_WORKGROUPS` overrides it for tuning.
 */
export const DECODE_TARGET_WORKGROUPS = 1024;

/** The decode kernel's shape for `groupRows` query rows per kv head (query heads per kv head × queries). */
export interface DecodeShape {
  /** Query rows per workgroup (a power of two, ≤ 32). */
  readonly rb: number;
  /** Invocations: 64 × min(4, rb). */
  readonly wg: number;
  /** Rows per invocation in S (rs) and in P·V (rt), the unroll counts. */
  readonly rs: number;
  readonly rt: number;
}

/** Workgroup memory attention_decode.wgsl declares for rb rows (mirrors its `var<workgroup>` arrays). */
export const decodeWorkgroupBytes = (rb: number, dp: number) => rb * dp + rb * K_BLOCK * 4 + rb * 8 * 4 + rb * 6 * 4;

/** The largest row count ≤ 32 (and ≤ the next power of two of groupRows) that fits `limit` bytes, or undefined. */
export function decodeShape(groupRows: number, dp: number, limit: number): DecodeShape | undefined {
  let rb = 1;
  while (rb < groupRows && rb < 32) rb *= 2;
  while (rb > 1 && decodeWorkgroupBytes(rb, dp) > limit) rb /= 2;
  if (decodeWorkgroupBytes(rb, dp) > limit) return undefined;
  const nrs = Math.min(4, rb);
  const wg = 64 * nrs;
  return { rb, wg, rs: Math.ceil(rb / nrs), rt: Math.ceil(rb / (wg / (dp / 4))) };
}

/** Blocks per split range and the number of ranges for `blocks` 64-key blocks and `groups` (b, kv head, row chunk) triples. */
export function decodeSplits(blocks: number, groups: number, target: number): { perSplit: number; splits: number } {
  const wanted = Math.max(1, Math.min(blocks, Math.ceil(target / groups)));
  const perSplit = Math.ceil(blocks / wanted);
  return { perSplit, splits: Math.ceil(blocks / perSplit) };
}
