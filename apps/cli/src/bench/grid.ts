import type { BenchCase } from "./types.js";

/** Grid names `--grid` accepts. "gpu" means the cuda or webgpu grid, by backend. */
export const GRID_NAMES = ["cpu", "cpu-large", "gpu", "quick"] as const;
export type GridName = (typeof GRID_NAMES)[number];

const cpuGrid: BenchCase[] = [512, 1024, 2048].map((N) => ({ B: 1, H: 8, N, D: 64, causal: false, dtype: "f32" }));

/** docs/DESIGN.md §5's CPU shapes plus one long sequence (B=1 H=1) that must run. */
const cpuLargeGrid: BenchCase[] = [...cpuGrid, { B: 1, H: 1, N: 32768, D: 64, causal: false, dtype: "f32" }];

/** The CUDA grid: B=4 H=32 fp16, D 64/128, N 1K–32K, causal off/on (side by side: they share inputs). */
const cudaGrid: BenchCase[] = [64, 128].flatMap((D) =>
  [1024, 2048, 4096, 8192, 16384, 32768].flatMap((N) =>
    [false, true].map((causal) => ({ B: 4, H: 32, N, D, causal, dtype: "f16" as const }))
  )
);

/** The WebGPU shape the peer numbers were taken at. */
const webgpuGrid: BenchCase[] = [{ B: 1, H: 32, N: 4096, D: 128, causal: false, dtype: "f16" }];

/** Small enough for tests and a first look (the js backend included). */
const quickGrid: BenchCase[] = [64, 128].map((N) => ({ B: 1, H: 2, N, D: 64, causal: false, dtype: "f32" }));

/** A grid and the peers that fit it: CPU libraries for f32 CPU shapes, torch for the cuda grid. */
export interface Grid {
  readonly name: string;
  readonly peers: "cpu" | "torch" | "none";
  readonly cases: BenchCase[];
}

/** The grid a backend runs: the one named, or its natural one (gpu for cuda/webgpu, cpu otherwise). */
export function gridFor(backend: string, name: GridName | undefined): Grid {
  const gpu = backend === "cuda" || backend === "webgpu";
  const chosen = name ?? (gpu ? "gpu" : "cpu");
  if (chosen === "gpu") {
    return backend === "webgpu"
      ? { name: "gpu (webgpu)", peers: "none", cases: webgpuGrid }
      : { name: "gpu (cuda)", peers: "torch", cases: cudaGrid };
  }
  if (chosen === "cpu-large") return { name: "cpu-large", peers: "cpu", cases: cpuLargeGrid };
  if (chosen === "quick") return { name: "quick", peers: "cpu", cases: quickGrid };
  return { name: "cpu", peers: "cpu", cases: cpuGrid };
}

/** A stable key for a case, for grouping backends that share it. */
export const caseKey = (c: BenchCase) => `${c.B}x${c.H}x${c.N}x${c.D}${c.causal ? "c" : ""}${c.dtype}`;
