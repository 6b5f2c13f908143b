import {
  type Accuracy,
  accuracy,
  attention,
  dims,
  exactAttention,
  type HostTensor,
  hostTensor,
  type Layout,
  type Shape4,
  toCanonicalF32,
} from "@sageattn/core";
import { EXIT_OK, reportError } from "../errors.js";
import { type FileTensor, TensorFileError } from "../io/tensor-file.js";
import { checkOutputs } from "../io/safe-write.js";
import { readTensor, writeTensors } from "../io/tensor-io.js";
import { attentionOps, formatOps, formatShape } from "../bench/format.js";
import { parseRunArgs, RUN_USAGE, type RunArgs } from "./run-args.js";

/** A file tensor as a 4-D host tensor (3-D files get B = 1). */
function toHost(t: FileTensor, layout: Layout, label: string, source: string): HostTensor {
  if (t.shape.length !== 3 && t.shape.length !== 4) {
    throw new TensorFileError({
      path: source,
      reason: "BadShape",
      message: `${source}: ${label} has shape [${t.shape.join(", ")}]: expected 4-D ${
        layout === "HND" ? "[B, H, N, D]" : "[B, N, H, D]"
      } or 3-D without B`,
    });
  }
  const shape = (t.shape.length === 3 ? [1, ...t.shape] : [...t.shape]) as unknown as Shape4;
  return hostTensor(t.data, shape, { dtype: t.dtype, layout });
}

interface RunReport {
  backend: string;
  rejected: ReadonlyArray<{ backend: string; reason: string; message: string }>;
  inputs: Record<"q" | "k" | "v", { path: string; dtype: string; shape: readonly number[] }>;
  layout: Layout;
  causal: boolean;
  smScale: number | null;
  timeMs: number;
  tops: number;
  output: { path: string; dtype: string; shape: readonly number[] } | null;
  lse: { path: string; dtype: string; shape: readonly number[] } | null;
  compare: Accuracy | null;
}

async function execute(args: RunArgs): Promise<RunReport> {
  const outputs = [args.out, args.lse].filter((p): p is string => p !== undefined);
  checkOutputs(outputs, [args.q.path, args.k.path, args.v.path], args.force);
  const files = {
    q: readTensor(args.q.path, args.q.name),
    k: readTensor(args.k.path, args.k.name),
    v: readTensor(args.v.path, args.v.name),
  };
  const ranks = new Set([files.q.shape.length, files.k.shape.length, files.v.shape.length]);
  if (ranks.size > 1) {
    throw new TensorFileError({
      path: args.q.path,
      reason: "BadShape",
      message:
        `q, k, v have different ranks (${files.q.shape.length}, ${files.k.shape.length}, ${files.v.shape.length})`,
    });
  }
  const q = toHost(files.q, args.layout, "q", args.q.path);
  const k = toHost(files.k, args.layout, "k", args.k.path);
  const v = toHost(files.v, args.layout, "v", args.v.path);
  const options = {
    causal: args.causal,
    smScale: args.smScale,
    returnLse: args.lse !== undefined,
    backend: args.backend,
  };

  const t0 = performance.now();
  const result = await attention(q, k, v, options);
  const timeMs = performance.now() - t0;
  const out = result.output;
  const dq = dims(q), dk = dims(k);
  const tops = attentionOps({ B: dq.B, H: dq.H, Nq: dq.N, Nk: dk.N, D: dq.D, causal: args.causal }) / (timeMs / 1e3) /
    1e12;

  const squeeze = files.q.shape.length === 3;
  const outShape = squeeze ? out.shape.slice(1) : [...out.shape];
  const lseShape = squeeze ? [dq.H, dq.N] : [dq.B, dq.H, dq.N];
  const targets: Array<{ path: string; name: string; tensor: FileTensor }> = [];
  if (args.out) {
    targets.push({
      path: args.out,
      name: "o",
      tensor: { dtype: out.dtype, shape: outShape, data: (out as HostTensor).data },
    });
  }
  if (args.lse && result.lse) {
    targets.push({ path: args.lse, name: "lse", tensor: { dtype: "f32", shape: lseShape, data: result.lse } });
  }
  const written = writeTensors(targets);

  let compare: Accuracy | null = null;
  if (args.compare) {
    const exact = await exactAttention(q, k, v, {
      ...options,
      returnLse: false,
      backend: undefined,
      outputDtype: "f32",
    });
    compare = accuracy(toCanonicalF32(out as HostTensor), toCanonicalF32(exact.output));
  }
  const info = (f: FileTensor, path: string) => ({ path, dtype: f.dtype, shape: f.shape });
  return {
    backend: result.backend,
    rejected: result.rejected.map((r) => ({ backend: r.backend, reason: r.reason, message: r.message })),
    inputs: { q: info(files.q, args.q.path), k: info(files.k, args.k.path), v: info(files.v, args.v.path) },
    layout: args.layout,
    causal: args.causal,
    smScale: args.smScale ?? null,
    timeMs,
    tops,
    output: args.out ? { path: args.out, dtype: written.get("o")!, shape: outShape } : null,
    lse: args.lse ? { path: args.lse, dtype: "f32", shape: lseShape } : null,
    compare,
  };
}

function printText(r: RunReport): void {
  const lines: string[] = [];
  const passed = r.rejected.length
    ? `  (passed over: ${r.rejected.map((x) => `${x.backend}: ${x.reason}`).join(", ")})`
    : "";
  lines.push(`backend   ${r.backend}${passed}`);
  for (const name of ["q", "k", "v"] as const) {
    const t = r.inputs[name];
    lines.push(`${name}         ${formatShape(t.shape)} ${t.dtype} ${r.layout}  ${t.path}`);
  }
  lines.push(`options   ${r.causal ? "causal" : "non-causal"}, smScale ${r.smScale ?? "1/sqrt(D)"}`);
  lines.push(`time      ${r.timeMs.toFixed(2)} ms  (${formatOps(r.tops)}, end to end, first call)`);
  lines.push(
    r.output
      ? `output    ${formatShape(r.output.shape)} ${r.output.dtype} → ${r.output.path}`
      : "output    not written (pass --out PATH)",
  );
  if (r.lse) lines.push(`lse       ${formatShape(r.lse.shape)} f32 → ${r.lse.path}`);
  if (r.compare) {
    const c = r.compare;
    lines.push(
      `vs exact  cos ${c.cosine.toFixed(6)}  rel-L1 ${c.relL1.toExponential(3)}  RMSE ${
        c.rmse.toExponential(3)
      }  max abs ${c.maxAbs.toExponential(3)}`,
    );
  }
  process.stdout.write(lines.join("\n") + "\n");
}

/** `sageattn run`: attention on tensors from files. Returns the exit status. */
export async function runCommand(argv: string[]): Promise<number> {
  try {
    const args = parseRunArgs(argv);
    if (args.help) {
      process.stdout.write(RUN_USAGE + "\n");
      return EXIT_OK;
    }
    const report = await execute(args);
    if (args.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
    else printText(report);
    return EXIT_OK;
  } catch (e) {
    return reportError("run", e);
  }
}
