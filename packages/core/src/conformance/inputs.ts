import type { AttentionMask } from "../problem.js";
import { makeQKV, rng } from "../random.js";
import { fromCanonicalF32, type HostTensor, hostTensor, toCanonicalF32 } from "../tensor.js";
import type { Case } from "./cases.js";

export interface CaseInputs {
  readonly q: HostTensor;
  readonly k: HostTensor;
  readonly v: HostTensor;
  readonly mask?: AttentionMask;
}

/** Gives `t` a padded head-dim stride: the same values in a larger buffer, so only strides find them. */
function padded(t: HostTensor): HostTensor {
  const [B, H, N, D] = t.shape;
  const pitch = D + 3;
  const vals = toCanonicalF32(t);
  const data = new Float32Array(B * H * N * pitch).fill(Number.NaN);
  for (let r = 0; r < B * H * N; r++) for (let d = 0; d < D; d++) data[r * pitch + d] = vals[r * D + d];
  return hostTensor(data, [B, H, N, D], { dtype: "f32", strides: [H * N * pitch, N * pitch, pitch, 1] });
}

/** Deterministic inputs for a case, in the case's dtype and layout. */
export function caseInputs(c: Case, seed: number): CaseInputs {
  const s = c.shape;
  const { q, k, v } = makeQKV(s, c.dist, seed);
  const make = (vals: Float32Array, H: number, N: number) =>
    fromCanonicalF32(vals, { B: s.B, H, N, D: s.D }, c.dtype, c.layout);
  let qt = make(q, s.Hq, s.Nq);
  if (c.strided && c.dtype === "f32" && c.layout === "HND") qt = padded(qt);
  const out: CaseInputs = { q: qt, k: make(k, s.Hkv, s.Nk), v: make(v, s.Hkv, s.Nk) };
  if (!c.mask) return out;
  const r = rng(seed + 99);
  if (c.mask === "boolean") {
    const data = new Uint8Array(s.B * s.Nq * s.Nk);
    for (let i = 0; i < data.length; i++) data[i] = r() < 0.7 ? 1 : 0;
    data.fill(0, s.Nk * 3, s.Nk * 4); // row 3 of batch 0 sees nothing
    return { ...out, mask: { kind: "boolean", data, shape: [s.B, 1, s.Nq, s.Nk] } };
  }
  const data = new Float32Array(s.Hq * s.Nq * s.Nk);
  for (let i = 0; i < data.length; i++) data[i] = r() < 0.1 ? -Infinity : 2 * (r() - 0.5);
  return { ...out, mask: { kind: "additive", data, shape: [1, s.Hq, s.Nq, s.Nk] } };
}
