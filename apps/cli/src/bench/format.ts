/** Sizes of one attention call, as the bench and `run` count operations. */
export interface AttentionSize {
  readonly B: number;
  readonly H: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly D: number;
  readonly causal: boolean;
}

/**
 * 4·B·H·Nq·Nk·D (two matmuls, a multiply and an add each), halved when causal: the convention of docs/DESIGN.md §4,
 * "Test or benchmark".
 */
export function attentionOps(s: AttentionSize): number {
  return (4 * s.B * s.H * s.Nq * s.Nk * s.D) / (s.causal ? 2 : 1);
}

/** "1×8×1024×64". */
export function formatShape(shape: readonly number[]): string {
  return shape.join("×");
}

/** Operations per second with a unit a person reads at a glance: "85.3 GOPS", "452 TOPS". */
export function formatOps(tops: number): string {
  if (!Number.isFinite(tops)) return "—";
  if (tops >= 1) return `${sig3(tops)} TOPS`;
  if (tops >= 1e-3) return `${sig3(tops * 1e3)} GOPS`;
  return `${sig3(tops * 1e6)} MOPS`;
}

/** Three significant digits without exponent notation for everyday magnitudes. */
export function sig3(x: number): string {
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** "12.3 ms", "1.52 s", "850 µs". */
export function formatTime(ms: number): string {
  if (ms >= 1000) return `${sig3(ms / 1000)} s`;
  if (ms >= 1) return `${sig3(ms)} ms`;
  return `${sig3(ms * 1000)} µs`;
}
