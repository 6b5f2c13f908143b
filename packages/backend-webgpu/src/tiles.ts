import type { Precision } from "./shaders.js";

/** Query rows and keys per workgroup tile of the attention kernels. */
export interface Tile {
  readonly bq: number;
  readonly bk: number;
}

// Preferred first. With f16-block P·V the key tile is the 64-key K block of DESIGN §2 step 5 (P·V summed in f16
// over exactly one K block, as the sage oracle does): BK 64 first, fewer query rows where workgroup memory is short.
// Otherwise (exact kernel, f32 P·V) BQ 64 × BK 32 first. H100 (Deno/wgpu/Vulkan, 48 KiB): see README's table.
const BLOCK_TILES: readonly Tile[] = [
  { bq: 64, bk: 64 },
  { bq: 32, bk: 64 },
  { bq: 16, bk: 64 },
];
const FREE_TILES: readonly Tile[] = [
  { bq: 64, bk: 32 },
  { bq: 64, bk: 64 },
  { bq: 32, bk: 32 },
  { bq: 64, bk: 16 },
  { bq: 32, bk: 16 },
  { bq: 16, bk: 16 },
];

/** Head dim padded the way the kernels store rows: a multiple of 64 (so each of 16 threads owns whole quads). */
export const paddedHeadDim = (d: number) => Math.ceil(d / 64) * 64;

/** Workgroup memory the attention kernel declares for a tile (mirrors the `var<workgroup>` arrays). */
export function workgroupBytes(kernel: "int8" | "exact", t: Tile, dp: number, precision: Precision): number {
  const rowBytes = kernel === "int8" ? dp : dp * 2;
  const qTile = t.bq * rowBytes;
  const kTile = t.bk * (rowBytes + (kernel === "int8" ? 16 : 8)); // one spare word (vec4 / quad) per key
  const vTile = t.bk * dp * 2;
  const pTile = precision === "f16" ? (t.bq + 4) * t.bk * 2 : t.bq * t.bk * 4; // P_PAD 4 f16, or f32 unpadded
  const rowParts = t.bq * 64;
  return qTile + kTile + vTile + pTile + rowParts;
}

/**
 * The first preferred tile that fits `limit` bytes of workgroup memory, or a forced one ("64x32") where it fits.
 * `f16Blocks`: P·V in f16 per 64-key block (the INT8 kernel's default on shader-f16 devices).
 */
export function chooseTile(kernel: "int8" | "exact", dp: number, precision: Precision, f16Blocks: boolean, limit: number, forced?: string): Tile | undefined {
  const m = forced?.match(/^(\d+)x(\d+)$/);
  const preferred = f16Blocks ? [...BLOCK_TILES, ...FREE_TILES] : FREE_TILES;
  const list = m ? [{ bq: Number(m[1]), bk: Number(m[2]) }, ...preferred] : preferred;
  return list.find((t) => [16, 32, 64].includes(t.bq) && [16, 32, 64].includes(t.bk) && workgroupBytes(kernel, t, dp, precision) <= limit);
}
