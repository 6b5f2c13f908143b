import { type Capabilities, pvModes, qkGranularities } from "../backend.js";
import type { DType } from "../dtype.js";
import type { AttentionOptions } from "../problem.js";
import type { Distribution } from "../random.js";
import { DISTRIBUTIONS } from "../random.js";
import type { Layout } from "../tensor.js";

export interface CaseShape {
  readonly B: number;
  readonly Hq: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly D: number;
}

/** One conformance case: shape, input distribution, storage and options. */
export interface Case {
  readonly name: string;
  readonly shape: CaseShape;
  readonly dist: Distribution;
  readonly dtype: DType;
  readonly layout: Layout;
  readonly options: AttentionOptions;
  /** Give Q a padded head stride (non-contiguous input). */
  readonly strided?: boolean;
  /** Hold the output to the exact-attention bounds too (off where a case is about something else). */
  readonly checkExact: boolean;
  readonly mask?: "boolean" | "additive";
  readonly varlen?: { q: number[]; k: number[] };
}

export interface CaseLimits {
  readonly maxN: number;
  readonly maxD: number;
  readonly dtypes: readonly DType[];
}

const sq = (B: number, H: number, N: number, D: number, Hkv = H, Nk = N): CaseShape => ({
  B,
  Hq: H,
  Hkv,
  Nq: N,
  Nk,
  D,
});

/** The cases a backend with `caps` must pass, within `limits`. */
export function conformanceCases(caps: Capabilities, limits: CaseLimits): Case[] {
  const n = (x: number) => Math.min(x, limits.maxN);
  const base = { dtype: "f32" as DType, layout: "HND" as Layout, options: {}, checkExact: true };
  const cases: Case[] = [];
  const add = (c: Omit<Case, "name"> & { name?: string }) => {
    const s = c.shape;
    const name = c.name ??
      `B${s.B} Hq${s.Hq} Hkv${s.Hkv} Nq${s.Nq} Nk${s.Nk} D${s.D} ${c.dist} ${c.dtype} ${c.layout}` +
        Object.entries(c.options).map(([k, v]) => ` ${k}=${String(v)}`).join("");
    cases.push({ ...c, name });
  };
  for (const dist of DISTRIBUTIONS) add({ ...base, shape: sq(1, 2, n(256), 64), dist });
  for (const N of [1, 17, 127, 129, 1000]) {
    if (N <= limits.maxN) add({ ...base, shape: sq(1, 2, N, 64), dist: "k-bias" });
  }
  for (const D of [1, 40, 64, 80, 96, 128, 256]) {
    if (D <= Math.min(limits.maxD, caps.maxHeadDim)) {
      add({ ...base, shape: sq(1, 2, n(129), D), dist: "gaussian", checkExact: D >= 16 });
    }
  }
  if (caps.causal) {
    add({ ...base, shape: sq(1, 2, n(129), 64), dist: "k-bias", options: { causal: true } });
    add({ ...base, shape: sq(2, 2, n(17), 64, 2, n(300)), dist: "gaussian", options: { causal: true } });
    // More queries than keys: the first Nq − Nk rows see nothing and must come out as zeros.
    add({
      ...base,
      shape: sq(1, 2, n(300), 64, 2, n(17)),
      dist: "gaussian",
      options: { causal: true, returnLse: caps.lse },
      checkExact: false,
    });
  }
  add({ ...base, shape: sq(2, 2, n(17), 64, 2, n(300)), dist: "gaussian" });
  add({ ...base, shape: sq(1, 4, n(200), 64, 2), dist: "k-bias", options: { causal: caps.causal } });
  add({ ...base, shape: sq(1, 4, n(150), 32, 1), dist: "gaussian" });
  add({ ...base, shape: sq(2, 2, n(150), 64), dist: "k-bias", layout: "NHD" });
  add({ ...base, shape: sq(1, 2, n(100), 64), dist: "gaussian", strided: true });
  for (const dtype of ["f16", "bf16"] as const) {
    if (limits.dtypes.includes(dtype) && caps.dtypes.includes(dtype)) {
      add({ ...base, shape: sq(1, 2, n(160), 64), dist: "k-bias", dtype });
      add({
        ...base,
        shape: sq(1, 2, n(160), 128),
        dist: "gaussian",
        dtype,
        layout: "NHD",
        options: { causal: caps.causal },
      });
    }
  }
  if (caps.dtypes.includes("f16") && caps.dtypes.includes("f32") && limits.dtypes.includes("f16")) {
    add({ ...base, shape: sq(1, 2, n(100), 64), dist: "gaussian", dtype: "f16", options: { outputDtype: "f32" } });
  }
  if (caps.lse) {
    add({ ...base, shape: sq(1, 2, n(200), 64), dist: "k-bias", options: { returnLse: true } });
    if (caps.causal) {
      add({ ...base, shape: sq(1, 2, n(200), 64), dist: "sink", options: { returnLse: true, causal: true } });
    }
  }
  add({ ...base, shape: sq(1, 2, n(200), 64), dist: "k-bias", options: { pvAccumulation: "f32" } });
  if (caps.mask) {
    add({
      ...base,
      shape: sq(2, 2, n(70), 64, 2, n(90)),
      dist: "gaussian",
      mask: "boolean",
      options: { returnLse: caps.lse },
    });
    add({ ...base, shape: sq(1, 2, n(70), 64, 2, n(90)), dist: "gaussian", mask: "additive" });
  }
  // fp8 and int8 P·V and the finer granularities change the numbers: only a backend that declares them runs these.
  const fp8 = pvModes(caps).includes("fp8");
  const int8 = pvModes(caps).includes("int8");
  const warp = qkGranularities(caps).includes("warp");
  const row = qkGranularities(caps).includes("row");
  const thread = qkGranularities(caps).includes("thread");
  // Massive channels are the inputs "row" is for; even it stays under the exact bound's cosine on them.
  const massive = { ...base, dist: "massive" as const, checkExact: false };
  if (fp8) {
    add({ ...base, shape: sq(1, 2, n(200), 64), dist: "k-bias", options: { pvAccumulation: "fp8" } });
    add({
      ...base,
      shape: sq(2, 4, n(150), 128, 2),
      dist: "gaussian",
      options: { pvAccumulation: "fp8", causal: caps.causal },
    });
    if (caps.lse) {
      add({
        ...base,
        shape: sq(1, 2, n(100), 64),
        dist: "k-bias",
        layout: "NHD",
        options: { pvAccumulation: "fp8", returnLse: true },
      });
    }
  }
  if (warp) {
    add({ ...base, shape: sq(1, 2, n(200), 64), dist: "k-bias", options: { qkGranularity: "warp" } });
    add({
      ...base,
      shape: sq(1, 4, n(129), 64, 2),
      dist: "sink",
      options: { qkGranularity: "warp", causal: caps.causal },
    });
  }
  // Per-token Q with K per 16 keys ("row": adjacent; "thread": a 64-key block's keys whose position mod 8 pairs
  // alike): sequences that end inside a K group, D 64 and 128, GQA, causal, LSE, f16 with f32 sums.
  const perTokenCases = (g: "row" | "thread") => {
    add({ ...massive, shape: sq(1, 2, n(200), 64), options: { qkGranularity: g } });
    add({
      ...base,
      shape: sq(1, 4, n(129), 128, 2, n(203)),
      dist: "sink",
      options: { qkGranularity: g, causal: caps.causal, returnLse: caps.lse },
    });
    if (limits.dtypes.includes("f16")) {
      add({
        ...massive,
        shape: sq(2, 2, n(150), 128),
        dtype: "f16",
        options: { qkGranularity: g, pvAccumulation: "f32" },
      });
    }
  };
  if (row) perTokenCases("row");
  if (fp8 && warp) {
    add({
      ...base,
      shape: sq(1, 2, n(170), 64),
      dist: "k-bias",
      options: { pvAccumulation: "fp8", qkGranularity: "warp" },
    });
  }
  if (caps.varlen && limits.maxN >= 260) {
    const v = { q: [0, 50, 70, 70, 200], k: [0, 60, 60, 130, 260] };
    add({ ...base, shape: sq(1, 2, 200, 64, 2, 260), dist: "k-bias", varlen: v, options: { returnLse: caps.lse } });
    if (caps.causal) {
      add({ ...base, shape: sq(1, 4, 200, 64, 2, 260), dist: "gaussian", varlen: v, options: { causal: true } });
    }
    // Q and K scale groups restart at each sequence.
    if (warp) {
      add({ ...base, shape: sq(1, 2, 200, 64, 2, 260), dist: "k-bias", varlen: v, options: { qkGranularity: "warp" } });
    }
    if (row) {
      add({
        ...massive,
        shape: sq(1, 4, 200, 128, 2, 260),
        varlen: v,
        options: { qkGranularity: "row", causal: caps.causal },
      });
    }
    // Per-sequence V scales (fp8) and 16-row Q blocks that restart at each sequence (warp).
    if (fp8 && warp) {
      add({
        ...base,
        shape: sq(1, 2, 200, 64, 2, 260),
        dist: "k-bias",
        varlen: v,
        options: { pvAccumulation: "fp8", qkGranularity: "warp" },
      });
    }
  }
  if (thread) {
    // And D 96 (cuda's mma.sync kernel, on Hopper too), NHD, varlen.
    perTokenCases("thread");
    if (limits.maxD >= 96) {
      add({
        ...base,
        shape: sq(1, 2, n(170), 96),
        dist: "k-bias",
        layout: "NHD",
        options: { qkGranularity: "thread" },
      });
    }
    if (caps.varlen && limits.maxN >= 260) {
      add({
        ...massive,
        shape: sq(1, 4, 200, 128, 2, 260),
        varlen: { q: [0, 50, 70, 70, 200], k: [0, 60, 60, 130, 260] },
        options: { qkGranularity: "thread", causal: caps.causal },
      });
    }
  }
  if (int8) int8Cases(caps, limits, add);
  return cases;
}

/**
 * int8 P·V (docs/DESIGN.md §2 step 5: P per row and 128-key block, V per channel), held to the exact bounds of the
 * f16 modes. Added after every other case, so the others keep their seeds on backends that gain int8.
 */
function int8Cases(caps: Capabilities, limits: CaseLimits, add: (c: Omit<Case, "name">) => void): void {
  const n = (x: number) => Math.min(x, limits.maxN);
  const base = { dtype: "f32" as DType, layout: "HND" as Layout, checkExact: true };
  const int8 = { pvAccumulation: "int8" } as const;
  add({ ...base, shape: sq(1, 2, n(200), 64), dist: "k-bias", options: int8 });
  // Keys end inside a 128-key P block (300 = 2·128 + 44), and causal rows stop inside one.
  add({ ...base, shape: sq(1, 2, n(300), 128), dist: "gaussian", options: { ...int8, causal: caps.causal } });
  add({ ...base, shape: sq(1, 2, n(256), 64), dist: "heavy-tail", options: int8 });
  add({ ...base, shape: sq(2, 2, n(150), 64), dist: "k-bias", layout: "NHD", options: int8 });
  if (caps.lse) add({ ...base, shape: sq(1, 2, n(150), 64), dist: "sink", options: { ...int8, returnLse: true } });
  if (limits.dtypes.includes("bf16") && caps.dtypes.includes("bf16")) {
    add({ ...base, shape: sq(1, 2, n(160), 128), dist: "gaussian", dtype: "bf16", options: int8 });
  }
  for (const g of ["row", "thread"] as const) {
    if (!qkGranularities(caps).includes(g)) continue;
    add({
      ...base,
      shape: sq(1, 4, n(129), 128, 2, n(203)),
      dist: "k-bias",
      options: { ...int8, qkGranularity: g, causal: caps.causal },
    });
  }
  // GQA with varlen: V scales and P blocks restart at each sequence (the last one spans two P blocks).
  if (caps.varlen && caps.causal && limits.maxN >= 260) {
    const v = { q: [0, 50, 70, 70, 200], k: [0, 60, 60, 130, 260] };
    add({ ...base, shape: sq(1, 4, 200, 64, 2, 260), dist: "gaussian", varlen: v, options: { ...int8, causal: true } });
  }
}
