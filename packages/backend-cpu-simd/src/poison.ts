import { type HostTensor, type Problem, Q_BLOCK, segments } from "@sageattn/core";
import type { Plan } from "./plan.js";

/** Whether rows [row0, row0 + rows) of Dp f32 values (the canonical copy in wasm memory) hold a NaN or ±inf. */
function nonFinite(f32: Float32Array, at: number, row0: number, rows: number, Dp: number): boolean {
  const end = at + (row0 + rows) * Dp;
  for (let i = at + row0 * Dp; i < end; i++) {
    const x = f32[i];
    if (x - x !== 0) return true; // NaN and ±inf give NaN
  }
  return false;
}

/** Sets output rows (b, h, n0 … n0 + count) and their LSE to NaN. */
function rowMarker(
  p: Problem,
  output: HostTensor,
  lse: Float32Array | undefined,
): (b: number, h: number, n0: number, count: number) => void {
  const nan = p.outputDtype === "f32" ? NaN : p.outputDtype === "f16" ? 0x7e00 : 0x7fc0;
  const data = output.data;
  return (b, h, n0, count) => {
    for (let n = n0; n < n0 + count; n++) {
      const at = (p.layout === "HND" ? (b * p.Hq + h) * p.Nq + n : (b * p.Nq + n) * p.Hq + h) * p.D;
      data.fill(nan, at, at + p.D);
      if (lse) lse[(b * p.Hq + h) * p.Nq + n] = NaN;
    }
  };
}

/**
 * A KV cache's attend with unvalidated queries: the rows of a 128-token Q block holding a NaN/±inf come out NaN, as
 * in `poisonNonFinite` (the cache's own rows were validated when appended). `qAt` is the element offset of the
 * queries' canonical copy ([B, Hq, Nq, Dp]) in wasm memory.
 */
export function poisonQueryRows(
  p: Problem,
  f32: Float32Array,
  qAt: number,
  Dp: number,
  output: HostTensor,
  lse: Float32Array | undefined,
): void {
  const markRows = rowMarker(p, output, lse);
  for (let b = 0; b < p.B; b++) {
    for (let h = 0; h < p.Hq; h++) {
      for (let i0 = 0; i0 < p.Nq; i0 += Q_BLOCK) {
        const rows = Math.min(Q_BLOCK, p.Nq - i0);
        if (nonFinite(f32, qAt, (b * p.Hq + h) * p.Nq + i0, rows, Dp)) markRows(b, h, i0, rows);
      }
    }
  }
}

/**
 * Unvalidated NaN/±inf inputs (validate: false) must reach the output, but the kernels' quantization (max-abs
 * scales with pmax, saturating float→int) turns them into ordinary numbers. So, as core's sage oracle defines it,
 * the rows a non-finite input makes undefined come out NaN (output and LSE): the rows of a 128-token Q block that
 * holds one (the block shares a scale), and every row of the heads reading a (sequence, kv head) whose K (smoothed
 * by its mean over the sequence) or V holds one. One pass over the inputs' canonical copy: O(size), small next to
 * the O(Nq·Nk·D) attention.
 */
export function poisonNonFinite(
  p: Problem,
  plan: Plan,
  f32: Float32Array,
  output: HostTensor,
  lse: Float32Array | undefined,
): void {
  const { Dp } = plan;
  const q = plan.q >>> 2, k = plan.k >>> 2, v = plan.v >>> 2;
  const markRows = rowMarker(p, output, lse);
  for (const s of segments(p)) {
    for (let kvh = 0; kvh < p.Hkv; kvh++) {
      const kvRow0 = (s.b * p.Hkv + kvh) * p.Nk + s.k0;
      const kvBad = nonFinite(f32, k, kvRow0, s.nk, Dp) || nonFinite(f32, v, kvRow0, s.nk, Dp);
      for (let h = kvh * p.group; h < (kvh + 1) * p.group; h++) {
        if (kvBad) {
          markRows(s.b, h, s.q0, s.nq);
          continue;
        }
        const qRow0 = (s.b * p.Hq + h) * p.Nq + s.q0;
        for (let i0 = 0; i0 < s.nq; i0 += Q_BLOCK) {
          const rows = Math.min(Q_BLOCK, s.nq - i0);
          if (nonFinite(f32, q, qRow0 + i0, rows, Dp)) markRows(s.b, h, s.q0 + i0, rows);
        }
      }
    }
  }
}
