import { availableParallelism, cpus } from "node:os";
import { parseArgs } from "node:util";
import {
  MASSIVE_CHANNELS,
  MASSIVE_SCALE,
  PV_ACCUMULATIONS,
  type PvAccumulation,
  QK_GRANULARITIES,
  type QkGranularity,
} from "@sageattn/core";
import { UsageError } from "../errors.js";
import { GRID_NAMES, type GridName } from "../bench/grid.js";
import { INPUT_DISTRIBUTIONS, type InputDistribution } from "../bench/inputs.js";

export const BENCH_USAGE =
  `Usage: sageattn bench [--backend NAME|all] [--peers] [--grid cpu|cpu-large|gpu|quick] [--json] [--chart out.svg] [--threads N]
                      [--qk-granularity block|warp|row|thread] [--pv f16-block|f32|fp8|int8] [--inputs gaussian|massive]

Times SageAttention end to end (smoothing and quantization included) per backend, beside the backend's own exact
kernel, and checks its accuracy against exact float64 attention on a slice of each case.
TOPS = 4·B·H·Nq·Nk·D / time (halved when causal). Each number is the median of several runs after warm-up.

Options:
  --backend NAME|all    cuda, webgpu, cpu-simd, js, or all (default: every available backend but the slow js one)
  --peers               also time other libraries on the same inputs: onnxruntime-node and onnxruntime-web (wasm)
                        MultiHeadAttention and tfjs-wasm on CPU grids; torch SDPA (python3) on the cuda grid, with
                        SageAttention2's kernels and our C ABI (SAGEATTN_TORCH_BACKENDS=sageattn-c,… picks among
                        flash, cudnn, sa2-fp16, sa2-fp8, sageattn-c, sageattn-kernel)
  --grid NAME           cpu:       B=1 H=8 D=64 f32, N 512, 1024, 2048 (the default for CPU backends)
                        cpu-large: cpu plus B=1 H=1 N=32768
                        gpu:       cuda: B=4 H=32 fp16, D 64/128, causal off/on, N 1K-32K; webgpu: B=1 H=32 D=128 N=4096
                                   (the default for GPU backends)
                        quick:     B=1 H=2 D=64 f32, N 64 and 128 (seconds, any backend)
  --sizes N[,N…]        keep only the grid's cases with these sequence lengths
  --head-dims D[,D…]    keep only the grid's cases with these head dims
  --threads N           threads for CPU backends and peers (default: all cores, ${
    availableParallelism?.() ?? cpus().length
  } here)
  --qk-granularity G    block, warp, row or thread: how finely our SageAttention quantizes Q and K (its qkGranularity option;
                        default: not passed, so the library's own). The exact kernels and the peers are unaffected;
                        a backend without G shows the error in place of its times
  --pv MODE             f16-block, f32, fp8 or int8: how our SageAttention computes P·V (its pvAccumulation option;
                        default: not passed, so the library's own). The exact kernels and the peers are unaffected;
                        a backend without MODE shows the error in place of its times
  --inputs NAME         gaussian (the default) or massive: the same samples with channels ${
    MASSIVE_CHANNELS.join(", ")
  } of Q and K ×${MASSIVE_SCALE}
                        and key 0 of each head a sink (the hard case for per-block INT8 scales); the accuracy check
                        and the in-process peers use them, torch (python) draws its own Gaussian inputs
  --json                print one JSON document on stdout (no table, no progress)
  --chart PATH          write an SVG chart of throughput per N for every backend and peer
  --decode              time decode on a KV cache instead (sageattn bench --decode --help for its options)
  -h, --help            show this help

Progress is shown on stderr when it is a terminal; otherwise each finished case is one JSON line there.
Exit status: 0 done; 1 a run of ours failed or its output was far from exact attention; 2 bad command line.
Example:
  sageattn bench --peers --chart bench.svg`;

export interface BenchArgs {
  readonly help: boolean;
  /** undefined: every available backend but js. */
  readonly backend: string | undefined;
  readonly peers: boolean;
  readonly grid: GridName | undefined;
  readonly threads: number | undefined;
  readonly json: boolean;
  readonly chart: string | undefined;
  /** Sequence lengths and head dims to keep (undefined: all of the grid's). */
  readonly sizes: readonly number[] | undefined;
  readonly headDims: readonly number[] | undefined;
  /** Passed to our SageAttention as `qkGranularity` (undefined: not passed). */
  readonly qkGranularity: QkGranularity | undefined;
  /** Passed to our SageAttention as `pvAccumulation` (undefined: not passed). */
  readonly pvAccumulation: PvAccumulation | undefined;
  readonly inputs: InputDistribution;
}

/** `value` if it is one of `allowed` (undefined stays undefined), else a UsageError naming the flag. */
function oneOf<T extends string>(flag: string, allowed: readonly T[], value: string | undefined): T | undefined {
  if (value !== undefined && !(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${flag} must be one of ${allowed.join(", ")}, got ${value}`);
  }
  return value as T | undefined;
}

function numberList(flag: string, text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const xs = text.split(",").map(Number);
  if (!xs.every((x) => Number.isInteger(x) && x > 0)) {
    throw new UsageError(`${flag} takes whole numbers separated by commas, got ${text}`);
  }
  return xs;
}

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      backend: { type: "string" },
      peers: { type: "boolean" },
      grid: { type: "string" },
      threads: { type: "string" },
      json: { type: "boolean" },
      chart: { type: "string" },
      sizes: { type: "string" },
      "head-dims": { type: "string" },
      "qk-granularity": { type: "string" },
      pv: { type: "string" },
      inputs: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const grid = oneOf<GridName>("--grid", GRID_NAMES, values.grid);
  let threads: number | undefined;
  if (values.threads !== undefined) {
    threads = Number(values.threads);
    if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
      throw new UsageError(`--threads must be a whole number from 1, got ${values.threads}`);
    }
  }
  if (values.chart !== undefined && !values.chart.toLowerCase().endsWith(".svg")) {
    throw new UsageError(`--chart writes an SVG file: name it *.svg, got ${values.chart}`);
  }
  const backend = values.backend === undefined || values.backend === "all" ? undefined : values.backend;
  return {
    help: values.help ?? false,
    backend,
    peers: values.peers ?? false,
    grid,
    threads,
    json: values.json ?? false,
    chart: values.chart,
    sizes: numberList("--sizes", values.sizes),
    headDims: numberList("--head-dims", values["head-dims"]),
    qkGranularity: oneOf("--qk-granularity", QK_GRANULARITIES, values["qk-granularity"]),
    pvAccumulation: oneOf("--pv", PV_ACCUMULATIONS, values.pv),
    inputs: oneOf("--inputs", INPUT_DISTRIBUTIONS, values.inputs) ?? "gaussian",
  };
}
