/** Deterministic random inputs for tests and benchmarks (the same seed gives the same tensors everywhere). */

/** A small fast PRNG (mulberry32): uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller). */
export function gaussian(rand: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const r = Math.sqrt(-2 * Math.log(u)), th = 2 * Math.PI * rand();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
}

/** The input distributions of docs/DESIGN.md §2 that every backend is checked on. */
export type Distribution = "gaussian" | "k-bias" | "heavy-tail" | "sink" | "constant";
export const DISTRIBUTIONS: readonly Distribution[] = ["gaussian", "k-bias", "heavy-tail", "sink", "constant"];

export interface QKV {
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
}

/**
 * Canonical HND f32 Q [B,Hq,Nq,D], K and V [B,Hkv,Nk,D] drawn from `dist`:
 * gaussian N(0,1); k-bias adds a per-channel K bias N(0, 4²) shared by all tokens (the paper's case);
 * heavy-tail draws unit-variance Laplace samples (exponential tails, kurtosis 6); sink gives token 0 of K a huge key aligned with Q (logits ~ 30);
 * constant makes every K row the same and every V row the same (a flat softmax).
 */
export function makeQKV(
  s: { B: number; Hq: number; Hkv: number; Nq: number; Nk: number; D: number },
  dist: Distribution,
  seed = 1,
): QKV {
  const uniform = rng(seed);
  const g = gaussian(uniform);
  const q = new Float32Array(s.B * s.Hq * s.Nq * s.D);
  const k = new Float32Array(s.B * s.Hkv * s.Nk * s.D);
  const v = new Float32Array(s.B * s.Hkv * s.Nk * s.D);
  const heavy = () => {
    const x = uniform() - 0.5;
    return (-Math.sign(x) * Math.log(1 - 2 * Math.abs(x))) / Math.SQRT2;
  };
  const draw = dist === "heavy-tail" ? heavy : g;
  for (let i = 0; i < q.length; i++) q[i] = draw();
  for (let i = 0; i < k.length; i++) k[i] = draw();
  for (let i = 0; i < v.length; i++) v[i] = draw();
  const rows = s.B * s.Hkv;
  if (dist === "k-bias") {
    for (let r = 0; r < rows; r++) {
      const bias = Array.from({ length: s.D }, () => 4 * g());
      for (let n = 0; n < s.Nk; n++) for (let d = 0; d < s.D; d++) k[(r * s.Nk + n) * s.D + d] += bias[d];
    }
  } else if (dist === "sink") {
    // Key 0 of each head points along the mean query direction with a large norm: every query attends to it hard.
    for (let r = 0; r < rows; r++) for (let d = 0; d < s.D; d++) k[r * s.Nk * s.D + d] = 0;
    for (let i = 0; i < q.length; i++) q[i] += 1;
    const big = 30 / Math.sqrt(s.D);
    for (let r = 0; r < rows; r++) for (let d = 0; d < s.D; d++) k[r * s.Nk * s.D + d] = big;
  } else if (dist === "constant") {
    for (let r = 0; r < rows; r++) {
      for (let n = 1; n < s.Nk; n++) {
        for (let d = 0; d < s.D; d++) {
          k[(r * s.Nk + n) * s.D + d] = k[r * s.Nk * s.D + d];
          v[(r * s.Nk + n) * s.D + d] = v[r * s.Nk * s.D + d];
        }
      }
    }
  }
  return { q, k, v };
}
