import { Effect } from "effect";
import {
  accuracy,
  applyMassive,
  bf16BitsToF32,
  decode16,
  type ElementAccess,
  encode16,
  exactReference,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  type HostTensor,
  hostTensor,
  normalStream,
  resolveProblem,
} from "@sageattn/core";
import type { BenchCase, SliceAccuracy } from "./types.js";

/**
 * What the inputs are drawn from: "gaussian" standard normal; "massive" the same samples with core's "massive"
 * transform (a few huge Q and K channels and a sink key: the hard case for INT8 granularity).
 */
export type InputDistribution = "gaussian" | "massive";
export const INPUT_DISTRIBUTIONS: readonly InputDistribution[] = ["gaussian", "massive"];

/** The same Q, K, V for every backend and peer of a case: seeded, HND contiguous, in the case's dtype. */
export interface BenchInputs {
  readonly case: BenchCase;
  readonly distribution: InputDistribution;
  readonly q: HostTensor;
  readonly k: HostTensor;
  readonly v: HostTensor;
}

let cached: { key: string; q: HostTensor; k: HostTensor; v: HostTensor } | undefined;

/** Values drawn per chunk before a 16-bit case encodes them (no f32 copy of a whole tensor). */
const CHUNK = 1 << 16;

/**
 * Inputs for a case: standard normal samples (core's `normalStream`, Q then K then V from one seeded stream), then
 * for "massive" core's `applyMassive`. The last tensors made are kept, so cases that differ only in causality (the cuda grid
 * lists them side by side) share them: B4 H32 N32K D128 is 3 × 2^29 values.
 */
export function makeInputs(c: BenchCase, distribution: InputDistribution = "gaussian", seed = 7): BenchInputs {
  const key = `${c.B}x${c.H}x${c.N}x${c.D}${c.dtype}:${distribution}:${seed}`;
  if (cached?.key !== key) {
    cached = undefined; // let the previous tensors go before drawing new ones
    const draw = normalStream(seed);
    const shape = [c.B, c.H, c.N, c.D] as const;
    const n = c.B * c.H * c.N * c.D;
    const t = (): HostTensor => {
      if (c.dtype === "f32") {
        const x = new Float32Array(n);
        draw(x);
        return hostTensor(x, shape, { dtype: "f32" });
      }
      // Whole chunks (the stream runs past the tensor's end on the last one): Bun's JIT was 1.4x slower on views.
      const bits = new Uint16Array(n), chunk = new Float32Array(CHUNK), half = new Uint16Array(CHUNK);
      for (let i = 0; i < n; i += CHUNK) {
        draw(chunk);
        encode16(chunk, c.dtype, half);
        bits.set(n - i < CHUNK ? half.subarray(0, n - i) : half, i);
      }
      return hostTensor(bits, shape, { dtype: c.dtype });
    };
    const q = t(), k = t(), v = t();
    if (distribution === "massive") massiveInPlace(q, k);
    cached = { key, q, k, v };
  }
  return { case: c, distribution, q: cached.q, k: cached.k, v: cached.v };
}

/** Element access to a host tensor's storage as numbers, decoding and encoding 16-bit ones. */
function elements(t: HostTensor): ElementAccess {
  const data = t.data;
  if (t.dtype === "f32") return { length: data.length, get: (i) => data[i], set: (i, x) => void (data[i] = x) };
  const [decode, encode] = t.dtype === "f16" ? [f16BitsToF32, f32ToF16Bits] : [bf16BitsToF32, f32ToBf16Bits];
  return { length: data.length, get: (i) => decode(data[i]), set: (i, x) => void (data[i] = encode(x)) };
}

/**
 * Core's "massive" distribution (`applyMassive`, as makeQKV applies it) on contiguous HND host tensors Q and K, in
 * place. Only the edited elements are decoded and re-encoded, so a 16-bit value is rounded twice (drawn, scaled).
 */
function massiveInPlace(q: HostTensor, k: HostTensor): void {
  applyMassive(elements(q), elements(k), k.shape[2], k.shape[3]);
}

/** The f32 values of a contiguous HND host tensor of the case (f16 decoded), for the CPU peers. */
export function f32Values(t: HostTensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : decode16(t.data, t.dtype === "bf16" ? "bf16" : "f16");
}

/**
 * The accuracy check runs on a slice: batch 0, the first heads, the last queries against all keys. With bottom-right
 * causality the last queries of a row block see exactly the keys they see in the full problem, so the slice's exact
 * attention is the full problem's, restricted.
 */
export interface CheckSlice {
  readonly heads: number;
  readonly q0: number;
  readonly nq: number;
}

export function checkSlice(c: BenchCase): CheckSlice {
  const nq = Math.min(c.N, 128);
  return { heads: Math.min(c.H, 2), q0: c.N - nq, nq };
}

/** Rows [n0, n0 + n) of heads [0, heads) of batch 0 from canonical [B, H, N, D] values (or a contiguous HND host tensor). */
export function sliceHND(
  source: ArrayLike<number> | HostTensor,
  c: BenchCase,
  heads: number,
  n0: number,
  n: number,
): Float32Array {
  const out = new Float32Array(heads * n * c.D);
  const host = "kind" in source ? source : undefined;
  const values = host ? host.data : (source as ArrayLike<number>);
  const decode = host && host.dtype !== "f32" ? (host.dtype === "f16" ? f16BitsToF32 : bf16BitsToF32) : undefined;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) {
      const src = (h * c.N + n0 + i) * c.D;
      const dst = (h * n + i) * c.D;
      for (let d = 0; d < c.D; d++) out[dst + d] = decode ? decode(values[src + d]) : values[src + d];
    }
  }
  return out;
}

/** The same slice from [B, N, H, D] values (onnxruntime's output layout). */
export function sliceNHD(values: ArrayLike<number>, c: BenchCase, heads: number, n0: number, n: number): Float32Array {
  const out = new Float32Array(heads * n * c.D);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) {
      const src = ((n0 + i) * c.H + h) * c.D;
      const dst = (h * n + i) * c.D;
      for (let d = 0; d < c.D; d++) out[dst + d] = values[src + d];
    }
  }
  return out;
}

/** Exact attention (float64, core's oracle) on the check slice. */
export function exactOnSlice(inputs: BenchInputs): Float64Array {
  const c = inputs.case;
  const s = checkSlice(c);
  const q = sliceHND(inputs.q, c, s.heads, s.q0, s.nq);
  const k = sliceHND(inputs.k, c, s.heads, 0, c.N);
  const v = sliceHND(inputs.v, c, s.heads, 0, c.N);
  const t = (x: Float32Array, n: number) => hostTensor(x, [1, s.heads, n, c.D]);
  const p = Effect.runSync(resolveProblem(t(q, s.nq), t(k, c.N), t(v, c.N), { causal: c.causal, validate: false }));
  return exactReference(p, q, k, v).output;
}

/** Cosine and rel-L1 of an output slice against the exact slice. */
export function sliceAccuracy(slice: Float32Array, exact: Float64Array): SliceAccuracy {
  const a = accuracy(slice, exact);
  return { cosine: a.cosine, relL1: a.relL1 };
}

/** The check slice of a host output tensor (HND contiguous, any dtype). */
export function outputSlice(out: HostTensor, c: BenchCase): Float32Array {
  const s = checkSlice(c);
  return sliceHND(out, c, s.heads, s.q0, s.nq);
}
