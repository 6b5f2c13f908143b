/**
 * The vocabulary below `attention`, defined once: the pipeline stages every backend runs (docs/DESIGN.md §2, "Pipeline
 * stages"), the algorithm's constants, the codes the kernels read for dtypes and layouts, and every accuracy bound
 * the tests, the conformance suite and the benchmarks hold an output to. Backends import these; WGSL and
 * AssemblyScript get them from the build's generators (`@sageattn/core/schema`).
 */
import type { DType } from "./dtype.js";
import type { Layout } from "./tensor.js";

/** The six stages, in the order a call runs them; comments, issues and docs/DESIGN.md §2 use these names. */
export const STAGES = [
  "k-mean",
  "q-quantization",
  "k-quantization",
  "v-conversion",
  "attention",
  "output-store",
] as const;
export type Stage = (typeof STAGES)[number];

/** Tokens per Q quantization block (one scale per block, per sequence and head). */
export const Q_BLOCK = 128;
/** Tokens per K quantization block; also the key block of the online softmax and of f16-block P·V. */
export const K_BLOCK = 64;
/**
 * Tokens per Q quantization block at `qkGranularity: "warp"`: the 16 query rows of one warp's m16 MMA tile
 * (SageAttention2's per-warp granularity as its Hopper kernels size it); K keeps its 64-token blocks.
 */
export const Q_WARP_BLOCK = 16;
/**
 * Keys per K quantization scale at `qkGranularity: "row"` (Q then has one scale per query row): one n16 slice of an
 * MMA tile, so a thread's logits need one K scale per 16 keys and the softmax's block of 64 keys is unchanged.
 */
export const K_ROW_BLOCK = 16;
/**
 * Keys per span at `qkGranularity: "thread"` (Q then has one scale per query row): each span (a K block) has
 * K_THREAD_GROUPS K scales, key j's being the one of its position's pair within each 8, (j mod 8) / 2. That is 16 keys
 * a scale, in pairs 8 apart: the columns one thread of a quad holds of a K block in an MMA accumulator (SageAttention2's
 * per-thread grouping), so a thread's logits of a block share one sQ·sK, as under "block". A 32-key span (8 keys a
 * scale) was measured 18–22 % slower in the Hopper kernel than 64 (NOTES.md).
 */
export const K_THREAD_SPAN = 64;
export const K_THREAD_GROUPS = 4;
/**
 * How finely Q and K are quantized (docs/DESIGN.md §2 step 2): "block" Q per 128 tokens and K per 64; "warp" Q per 16
 * and K per 64; "row" Q per token and K per 16 adjacent keys; "thread" Q per token and K per 16 keys chosen by the
 * MMA layout (K_THREAD_SPAN). "row" and "thread" are about equally accurate on massive channels (cos ≈ 0.998 and
 * above); "thread" costs the kernels much less.
 */
export type QkGranularity = "block" | "warp" | "row" | "thread";
export const QK_GRANULARITIES: readonly QkGranularity[] = ["block", "warp", "row", "thread"];

/** Tokens per Q scale for a granularity. */
export function qRowsPerScale(g: QkGranularity): number {
  return g === "row" || g === "thread" ? 1 : g === "warp" ? Q_WARP_BLOCK : Q_BLOCK;
}
/** Which K scale key j (counted from its sequence's first key) uses, scales numbered from 0 for the sequence. */
export function kScaleIndex(g: QkGranularity, j: number): number {
  if (g === "row") return Math.floor(j / K_ROW_BLOCK);
  if (g === "thread") return Math.floor(j / K_THREAD_SPAN) * K_THREAD_GROUPS + ((j & 7) >> 1);
  return Math.floor(j / K_BLOCK);
}
/** How many K scales a sequence of n keys has. */
export function kScaleCount(g: QkGranularity, n: number): number {
  if (g === "row") return Math.ceil(n / K_ROW_BLOCK);
  if (g === "thread") return Math.ceil(n / K_THREAD_SPAN) * K_THREAD_GROUPS;
  return Math.ceil(n / K_BLOCK);
}
/**
 * Keys per P scale in int8 and fp8 P·V (docs/DESIGN.md §2 step 5): each query row quantizes P per 128 keys, counted
 * from its sequence's first key, to 0..255 against the block's largest logit (int8), or to e4m3 as 448·P against the
 * running max at the block's end (fp8, whose block partial is one f32): one Hopper kernel's K tile, two K blocks.
 */
export const P_BLOCK = 128;
/** Largest value of int8 P·V's unsigned P: u = round(255 · 2^(s − block max)). */
export const U8_MAX = 255;
/** Largest finite FP8 e4m3 magnitude: fp8 P·V scales P and each V channel to it before the cast. */
export const E4M3_MAX = 448;
/** log2(e): Q is quantized with smScale·LOG2E folded in, so logits come out in base-2 units. */
export const LOG2E = Math.LOG2E;
/** Largest INT8 magnitude after quantization (symmetric, ±127). */
export const INT8_MAX = 127;

/** The element-type code every kernel reads (sa_dtype in csrc/sageattn.h, DTYPE in WGSL). */
export const DTYPE_CODE: Readonly<Record<DType, number>> = { f32: 0, f16: 1, bf16: 2 };
/** The layout code every kernel reads (sa_layout in csrc/sageattn.h). */
export const LAYOUT_CODE: Readonly<Record<Layout, number>> = { HND: 0, NHD: 1 };

/**
 * How a backend computes P·V (docs/DESIGN.md §2 step 5): "f16-block" P and V in f16, products summed in f16 within
 * each 64-key block and then in f32; "f32" the same f16 products summed in f32 throughout; "fp8" 448·P and V scaled
 * per channel rounded to e4m3, each 64-key block summed in f32 and then added to an f32 accumulator (SageAttention2's
 * two-level accumulation); "int8" P as 0..255 per (query row, 128-key block) against the block's largest logit and V
 * as INT8 with one scale per channel, each block's u8·s8 sum exact in int32 and then scaled into an f32 accumulator;
 * "fixed16" P and V as 16-bit fixed point per (key block, channel), summed exactly in int32 (cpu-simd), which tracks
 * the "f32" oracle.
 */
export type PvMode = "f16-block" | "f32" | "fp8" | "int8" | "fixed16";
/** The P·V modes a caller can ask for (`pvAccumulation`). */
export type PvAccumulation = "f16-block" | "f32" | "fp8" | "int8";
/** Every `pvAccumulation` value, in the order messages and the CLI list them. */
export const PV_ACCUMULATIONS: readonly PvAccumulation[] = ["f16-block", "f32", "fp8", "int8"];

/**
 * Accuracy bounds (docs/DESIGN.md §2, "Accuracy"). Against float64 exact attention: what "models do not notice" means.
 * Laplace-tailed inputs stretch each block's max, so the INT8 step grows: Sage v1's per-block scales reach about cos
 * 0.99980 / rel-L1 0.018 there (the sage oracle itself, N=256 D=64), hence a looser heavy-tail bound. Against the
 * sage oracle a backend is held far tighter. Output rounding alone costs about half an ulp on average (f16 2^-12,
 * bf16 2^-9), added to the rel-L1 bounds for 16-bit outputs.
 */
export const BOUNDS = {
  exact: { minCosine: 0.9998, maxRelL1: 0.02 },
  heavyTail: { minCosine: 0.9995, maxRelL1: 0.03 },
  /**
   * fp8 P·V: e4m3 keeps 3 significand bits (about 2% RMS on each of P and V); the oracle itself reaches cos 0.99933 /
   * rel-L1 0.037 on Gaussian and k-bias inputs (issue 16 hoped for 0.9995 / 0.03), hence this margin.
   */
  fp8: { minCosine: 0.999, maxRelL1: 0.045 },
  // int8 P·V has no bound of its own: `exactBound` holds it to `exact` and `heavyTail`. Measured (the oracle against
  // float64 exact, N 256–4096, D 64 and 128): cos ≥ 0.99985, rel-L1 ≤ 0.0172 on gaussian and k-bias; cos ≥ 0.99957,
  // rel-L1 ≤ 0.0288 on heavy-tail (f16 P·V 0.99971 / 0.0235 there, fp8 0.99905 / 0.0436).
  sageRelL1: 2e-3,
  outputRounding: { f32: 0, f16: 5e-4, bf16: 4e-3 } as Readonly<Record<DType, number>>,
  /** |lse − oracle| ≤ lseVsSage · max(1, |oracle|); rows without keys exactly −∞. */
  lseVsSage: 2e-2,
  /**
   * Benchmarks flag an output this far from exact as wrong, whatever its speed (a loose sanity bar, not the bar of
   * docs/DESIGN.md §2).
   */
  clearlyWrong: { minCosine: 0.999, maxRelL1: 0.05 },
  /**
   * The same bar on the "massive" distribution, where per-block INT8 itself lands near cos 0.994 (D64, H200): only
   * further off than that is wrong there.
   */
  clearlyWrongMassive: { minCosine: 0.99, maxRelL1: 0.05 },
} as const;

/**
 * The exact-attention bound for an input distribution and P·V mode (fp8's is the loosest, so it covers heavy tails too;
 * int8 meets the f16 modes' bounds).
 */
export const exactBound = (
  heavyTail: boolean,
  pv: PvAccumulation = "f16-block",
): { readonly minCosine: number; readonly maxRelL1: number } =>
  pv === "fp8" ? BOUNDS.fp8 : heavyTail ? BOUNDS.heavyTail : BOUNDS.exact;
