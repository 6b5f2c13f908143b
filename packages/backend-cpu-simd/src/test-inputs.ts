// Shared helpers for this package's tests (not exported by the package).
import {
  type AttentionOptions,
  type Distribution,
  type HostTensor,
  hostTensor,
  makeQKV,
  type Problem,
  resolveProblem,
} from "@sageattn/core";
import { Effect } from "effect";

export interface Inputs {
  readonly q: HostTensor;
  readonly k: HostTensor;
  readonly v: HostTensor;
  readonly raw: { q: Float32Array; k: Float32Array; v: Float32Array };
  readonly p: Problem;
}

/** HND f32 inputs of a shape and distribution, with the resolved problem for `options`. */
export function inputs(
  s: { B: number; Hq: number; Hkv: number; Nq: number; Nk: number; D: number },
  dist: Distribution,
  options: AttentionOptions = {},
  seed = 1,
): Inputs {
  const raw = makeQKV(s, dist, seed);
  const q = hostTensor(raw.q, [s.B, s.Hq, s.Nq, s.D]);
  const k = hostTensor(raw.k, [s.B, s.Hkv, s.Nk, s.D]);
  const v = hostTensor(raw.v, [s.B, s.Hkv, s.Nk, s.D]);
  return { q, k, v, raw: { q: raw.q, k: raw.k, v: raw.v }, p: Effect.runSync(resolveProblem(q, k, v, options)) };
}

/** Index of the first element where two arrays differ bitwise (NaN-safe), or −1. */
export function firstDifference(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}
