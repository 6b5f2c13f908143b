import type { Accuracy } from "@sageattn/core";

/** One benchmark shape: Nq = Nk = N, equal query and kv heads, HND layout. */
export interface BenchCase {
  readonly B: number;
  readonly H: number;
  readonly N: number;
  readonly D: number;
  readonly causal: boolean;
  readonly dtype: "f32" | "f16";
}

/**
 * A timed kernel: median milliseconds per call over `runs` timed calls (after warm-up), and TOPS from the count of
 * docs/DESIGN.md §4.
 */
export interface Timing {
  readonly ms: number;
  readonly tops: number;
  readonly runs: number;
}

/** Accuracy of an output against exact attention on the check slice. */
export type SliceAccuracy = Pick<Accuracy, "cosine" | "relL1">;

/** A failure, kept and shown rather than hidden. */
export interface Failure {
  readonly error: string;
}

/** One of our backends on one case: SageAttention and the backend's own exact kernel, end to end. */
export interface BackendResult {
  readonly backend: string;
  readonly device: string;
  readonly ours: Timing | Failure;
  /** null when the backend has no exact kernel. */
  readonly exact: Timing | Failure | null;
  readonly accuracy: SliceAccuracy | null;
}

export type PeerResult =
  | { readonly peer: string; readonly status: "ok"; readonly timing: Timing; readonly accuracy: SliceAccuracy | null }
  | { readonly peer: string; readonly status: "failed" | "unavailable"; readonly error: string };

export interface CaseResult {
  readonly case: BenchCase;
  readonly grid: string;
  readonly backends: BackendResult[];
  readonly peers: PeerResult[];
}

export const isTiming = (x: Timing | Failure | null | undefined): x is Timing => !!x && "ms" in x;
