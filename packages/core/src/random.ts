/** Deterministic random inputs for tests and benchmarks (the same seed gives the same tensors everywhere). */

/** mulberry32's output for state `a`: uniform in [0, 1). */
function mulberryOut(a: number): number {
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const MULBERRY_STEP = 0x6d2b79f5;

/** mulberry32 with its state in the open, so a bulk fill can run the same sequence in a local variable. */
class Mulberry32 {
  constructor(public a: number) {}
  next(): number {
    this.a = (this.a + MULBERRY_STEP) >>> 0;
    return mulberryOut(this.a);
  }
}

/** A small fast PRNG (mulberry32): uniform in [0, 1). */
export function rng(seed: number): () => number {
  const m = new Mulberry32(seed >>> 0);
  return () => m.next();
}

/** Box–Muller over `rand`, one value at a time: the second of each pair is kept for the next call. */
class BoxMuller {
  protected spare = 0;
  protected hasSpare = false;
  constructor(private readonly rand: () => number) {}

  next(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    let u = 0;
    while (u === 0) u = this.rand();
    const r = Math.sqrt(-2 * Math.log(u)), th = 2 * Math.PI * this.rand();
    this.spare = r * Math.sin(th);
    this.hasSpare = true;
    return r * Math.cos(th);
  }
}

/** Standard normal samples (Box–Muller). */
export function gaussian(rand: () => number): () => number {
  const g = new BoxMuller(rand);
  return () => g.next();
}

/**
 * gaussian(rng) over one mulberry32 state, with a bulk `fill` that gives exactly the values one draw at a time would
 * (the benchmarks draw billions: the fill keeps the state in a local and skips a closure call per value).
 */
class MulberryNormal extends BoxMuller {
  constructor(private readonly m: Mulberry32) {
    super(() => m.next());
  }

  fill(x: Float32Array): void {
    let i = 0;
    if (this.hasSpare && x.length > 0) x[i++] = this.next();
    let a = this.m.a;
    for (; i + 1 < x.length; i += 2) {
      let u = 0;
      while (u === 0) {
        a = (a + MULBERRY_STEP) >>> 0;
        u = mulberryOut(a);
      }
      a = (a + MULBERRY_STEP) >>> 0;
      const r = Math.sqrt(-2 * Math.log(u)), th = 2 * Math.PI * mulberryOut(a);
      x[i] = r * Math.cos(th);
      x[i + 1] = r * Math.sin(th);
    }
    this.m.a = a;
    if (i < x.length) x[i] = this.next();
  }
}

/** normalStream's state between calls: mulberry32's state and the second sample of an unfinished pair. */
interface NormalState {
  a: number;
  spare: number;
  hasSpare: boolean;
}

/** Fills `x` from `s` by the polar method; mulberry32 is written out in the loop (Bun ran it 1.5× slower as calls). */
function fillNormal(x: Float32Array, s: NormalState): void {
  let i = 0;
  if (s.hasSpare && x.length > 0) {
    x[i++] = s.spare;
    s.hasSpare = false;
  }
  let a = s.a; // a local in the loop; int32 (`| 0`) has mulberry32's bits and stays a small integer for the JIT
  for (; i < x.length; i += 2) {
    let u = 0, v = 0, r = 0;
    do {
      a = (a + MULBERRY_STEP) | 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      u = ((t ^ (t >>> 14)) >>> 0) * (2 / 4294967296) - 1;
      a = (a + MULBERRY_STEP) | 0;
      t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      v = ((t ^ (t >>> 14)) >>> 0) * (2 / 4294967296) - 1;
      r = u * u + v * v;
    } while (r >= 1 || r === 0);
    const m = Math.sqrt((-2 * Math.log(r)) / r);
    x[i] = u * m;
    if (i + 1 < x.length) {
      x[i + 1] = v * m;
    } else {
      s.spare = v * m;
      s.hasSpare = true;
    }
  }
  s.a = a;
}

/**
 * A stream of standard normal samples by Marsaglia's polar method over mulberry32(seed): each call fills the next
 * `x.length` samples. No trigonometry, so 2–3× faster than makeQKV's Box–Muller (Math.cos is slow in V8):
 * 14–18 ns a value under Bun and Deno on the 2-core CI machine, against 35–65. The benchmarks draw billions with
 * it. Not the same values as makeQKV's.
 */
export function normalStream(seed: number): (x: Float32Array) => void {
  const state: NormalState = { a: seed | 0, spare: 0, hasSpare: false };
  return (x) => fillNormal(x, state);
}

/**
 * The input distributions of docs/DESIGN.md §2. Every backend is checked on those in DISTRIBUTIONS; "massive" is the
 * hard case for INT8 granularity (issue 16), used where a test or bench names it.
 */
export type Distribution = "gaussian" | "k-bias" | "heavy-tail" | "sink" | "constant" | "massive";
export const DISTRIBUTIONS: readonly Distribution[] = ["gaussian", "k-bias", "heavy-tail", "sink", "constant"];

/** The "massive" distribution: these channels of Q and K ×MASSIVE_SCALE, and key 0 of each head MASSIVE_SINK everywhere. */
export const MASSIVE_CHANNELS: readonly number[] = [3, 17, 40];
export const MASSIVE_SCALE = 20;
export const MASSIVE_SINK = 30 / 8;

/** Reads and writes element i of a tensor's storage as a number (a 16-bit tensor decodes and encodes). */
export interface ElementAccess {
  readonly length: number;
  get(i: number): number;
  set(i: number, x: number): void;
}

/**
 * The "massive" distribution's edits, in place, on contiguous HND Q [*, Nq, D] and K [heads, Nk, D]: channels
 * MASSIVE_CHANNELS (those below D) of every Q and K row ×MASSIVE_SCALE, then key 0 of each head MASSIVE_SINK in every
 * channel. makeQKV applies it to its Gaussian draws, the benchmarks to theirs.
 */
export function applyMassive(q: ElementAccess, k: ElementAccess, Nk: number, D: number): void {
  const channels = MASSIVE_CHANNELS.filter((c) => c < D);
  for (const x of [q, k]) {
    for (let row = 0; row < x.length; row += D) {
      for (const c of channels) x.set(row + c, x.get(row + c) * MASSIVE_SCALE);
    }
  }
  for (let head = 0; head < k.length / (Nk * D); head++) {
    for (let d = 0; d < D; d++) k.set(head * Nk * D + d, MASSIVE_SINK);
  }
}

const access = (x: Float32Array): ElementAccess => ({
  length: x.length,
  get: (i) => x[i],
  set: (i, v) => void (x[i] = v),
});

export interface QKV {
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
}

/**
 * Canonical HND f32 Q [B,Hq,Nq,D], K and V [B,Hkv,Nk,D] drawn from `dist`:
 * gaussian N(0,1); k-bias adds a per-channel K bias N(0, 4²) shared by all tokens (the paper's case);
 * heavy-tail draws unit-variance Laplace samples (exponential tails, kurtosis 6); sink gives token 0 of K a huge key aligned with Q (logits ~ 30);
 * constant makes every K row the same and every V row the same (a flat softmax);
 * massive is gaussian with channels 3, 17 and 40 of Q and K ×20 (where D has them) and key 0 of each head a sink
 * (every channel 30/8): a few huge channels set every per-block INT8 scale, so the other channels keep few levels.
 */
export function makeQKV(
  s: { B: number; Hq: number; Hkv: number; Nq: number; Nk: number; D: number },
  dist: Distribution,
  seed = 1,
): QKV {
  const m = new Mulberry32(seed >>> 0);
  const uniform = () => m.next();
  const normal = new MulberryNormal(m);
  const g = () => normal.next();
  const q = new Float32Array(s.B * s.Hq * s.Nq * s.D);
  const k = new Float32Array(s.B * s.Hkv * s.Nk * s.D);
  const v = new Float32Array(s.B * s.Hkv * s.Nk * s.D);
  const heavy = () => {
    const x = uniform() - 0.5;
    return (-Math.sign(x) * Math.log(1 - 2 * Math.abs(x))) / Math.SQRT2;
  };
  for (const x of [q, k, v]) {
    if (dist !== "heavy-tail") normal.fill(x);
    else for (let i = 0; i < x.length; i++) x[i] = heavy();
  }
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
  } else if (dist === "massive") {
    applyMassive(access(q), access(k), s.Nk, s.D);
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
