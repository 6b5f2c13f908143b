import { parseArgs } from "node:util";
import type { Layout } from "@sageattn/core";
import { UsageError } from "../errors.js";
import { formatOf } from "../io/tensor-file.js";

export const RUN_USAGE = `Usage: sageattn run --q q.npy --k k.npy --v v.npy [options]
       sageattn run --in qkv.safetensors [options]

Runs SageAttention on Q, K, V read from files and writes the output in the same formats.

Inputs (.npy or .safetensors; float32, float16 or bfloat16; 4-D [B,H,N,D] or [B,N,H,D], or 3-D without B):
  --q, --k, --v PATH    one file per tensor (a .safetensors file: the tensor named by --q-name etc.,
                        or its only tensor)
  --in PATH             one .safetensors file holding all three
  --q-name, --k-name, --v-name NAME
                        tensor names in safetensors files (default q, k, v)
Options:
  --layout HND|NHD      axis order of the inputs (default HND: [B, heads, tokens, head dim])
  --causal              causal attention, bottom-right aligned (key j visible to query i iff j <= i + Nk - Nq)
  --sm-scale X          logit scale (default 1/sqrt(D))
  --out PATH            write the output (.npy or .safetensors, tensor "o"; bf16 is widened to f32 in .npy)
  --lse PATH            also write the natural-log LSE, f32 [B, H, Nq] (tensor "lse"; may be the --out file)
  --force               replace --out/--lse files that exist (never an input file). Outputs are written to
                        temporary files and renamed into place only when all are complete: a failed run
                        leaves every previous output as it was
  --backend NAME        cuda, webgpu, cpu-simd or js (default: the best available, or SAGEATTN_BACKEND)
  --compare             also run exact attention (float64) and print cosine, rel-L1, RMSE, max abs error
  --json                print one JSON document instead of text
  -h, --help            show this help

Exit status: 0 done, 1 failed (bad file, backend error), 2 bad command line.
Example:
  sageattn run --q q.npy --k k.npy --v v.npy --causal --out o.npy --compare`;

export interface RunArgs {
  readonly help: boolean;
  readonly q: { path: string; name: string };
  readonly k: { path: string; name: string };
  readonly v: { path: string; name: string };
  readonly layout: Layout;
  readonly causal: boolean;
  readonly smScale: number | undefined;
  readonly out: string | undefined;
  readonly lse: string | undefined;
  readonly backend: string | undefined;
  readonly compare: boolean;
  readonly json: boolean;
  readonly force: boolean;
}

/** Parses `sageattn run`'s arguments; throws UsageError with a sentence a person can act on. */
export function parseRunArgs(argv: readonly string[]): RunArgs {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      q: { type: "string" },
      k: { type: "string" },
      v: { type: "string" },
      in: { type: "string" },
      "q-name": { type: "string" },
      "k-name": { type: "string" },
      "v-name": { type: "string" },
      layout: { type: "string" },
      causal: { type: "boolean" },
      "sm-scale": { type: "string" },
      out: { type: "string" },
      lse: { type: "string" },
      backend: { type: "string" },
      compare: { type: "boolean" },
      json: { type: "boolean" },
      force: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const names = { q: values["q-name"] ?? "q", k: values["k-name"] ?? "k", v: values["v-name"] ?? "v" };
  const base = {
    layout: "HND" as Layout,
    causal: false,
    smScale: undefined,
    out: undefined,
    lse: undefined,
    backend: undefined,
    compare: false,
    json: false,
    force: false,
  };
  if (values.help) {
    return { help: true, q: { path: "", name: "" }, k: { path: "", name: "" }, v: { path: "", name: "" }, ...base };
  }

  const one = (flag: "q" | "k" | "v") => {
    const path = values[flag] ?? values.in;
    if (!path) {
      throw new UsageError(
        values.in === undefined ? "give --q, --k and --v (or --in file.safetensors)" : `--${flag} is missing`,
      );
    }
    if (!formatOf(path)) {
      throw new UsageError(`--${values[flag] ? flag : "in"} ${path}: name a .npy or .safetensors file`);
    }
    return { path, name: names[flag] };
  };
  if (values.in !== undefined && formatOf(values.in) !== "safetensors") {
    throw new UsageError(`--in takes a .safetensors file, got ${values.in}`);
  }
  const layout = (values.layout ?? "HND").toUpperCase();
  if (layout !== "HND" && layout !== "NHD") throw new UsageError(`--layout must be HND or NHD, got ${values.layout}`);
  let smScale: number | undefined;
  if (values["sm-scale"] !== undefined) {
    smScale = Number(values["sm-scale"]);
    if (!Number.isFinite(smScale) || smScale === 0 || values["sm-scale"].trim() === "") {
      throw new UsageError(`--sm-scale must be a finite nonzero number, got ${values["sm-scale"]}`);
    }
  }
  for (const flag of ["out", "lse"] as const) {
    const p = values[flag];
    if (p !== undefined && !formatOf(p)) throw new UsageError(`--${flag} ${p}: name a .npy or .safetensors file`);
  }
  if (values.out !== undefined && values.out === values.lse && formatOf(values.out) === "npy") {
    throw new UsageError(
      "--out and --lse name the same .npy file; a .npy file holds one array (use two files, or one .safetensors)",
    );
  }
  return {
    help: false,
    q: one("q"),
    k: one("k"),
    v: one("v"),
    layout,
    causal: values.causal ?? false,
    smScale,
    out: values.out,
    lse: values.lse,
    backend: values.backend,
    compare: values.compare ?? false,
    json: values.json ?? false,
    force: values.force ?? false,
  };
}
