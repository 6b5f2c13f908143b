import { parseArgs } from "node:util";
import { Effect } from "effect";
import {
  accuracy,
  attention,
  type AttentionOptions,
  type DType,
  exactReference,
  fromCanonicalF32,
  getBackend,
  type HostTensor,
  makeQKV,
  resolveProblem,
  toCanonicalF32,
} from "@sageattn/core";
import { machineName } from "../cli-util.js";
import { describeError, EXIT_OK, EXIT_USAGE, reportError, UsageError } from "../errors.js";

const HELP = `sageattn demo [options]

Runs a realistic attention workload (Gaussian Q/K/V with a per-channel K bias, the case SageAttention's K smoothing
exists for) on the best available backend, and prints its time and TOPS, the same backend's exact kernel on the
same inputs, and the accuracy against float64 exact attention.

  --backend <name>   cuda | webgpu | cpu-simd | js (default: best available, or SAGEATTN_BACKEND)
  --heads <n>        heads (default 16)
  --n <n>            tokens (default 2048)
  --dim <n>          head dim (default 64)
  --dtype <t>        f32 | f16 | bf16 (default f32)
  --causal           causal attention
  --json             print one JSON document`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeIt(run: () => Promise<unknown>, reps: number): Promise<number> {
  await run(); // warm-up: compilation, tier-up, allocation
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return median(times);
}

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      backend: { type: "string" },
      heads: { type: "string" },
      n: { type: "string" },
      dim: { type: "string" },
      dtype: { type: "string" },
      causal: { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return EXIT_OK;
  }
  const H = Number(values.heads ?? 16), N = Number(values.n ?? 2048), D = Number(values.dim ?? 64);
  const dtype = (values.dtype ?? "f32") as DType;
  if (![H, N, D].every((x) => Number.isInteger(x) && x > 0) || !["f32", "f16", "bf16"].includes(dtype)) {
    console.error(`sageattn demo: --heads, --n, --dim must be positive integers and --dtype f32|f16|bf16\n\n${HELP}`);
    return EXIT_USAGE;
  }
  const causal = values.causal ?? false;
  const { q, k, v } = makeQKV({ B: 1, Hq: H, Hkv: H, Nq: N, Nk: N, D }, "k-bias", 42);
  const t = (x: Float32Array): HostTensor => fromCanonicalF32(x, { B: 1, H, N, D }, dtype, "HND");
  const [qt, kt, vt] = [t(q), t(k), t(v)];
  const options: AttentionOptions = { causal, backend: values.backend };
  try {
    const first = await attention(qt, kt, vt, options);
    const backend = await getBackend(first.backend);
    const flops = (4 * H * N * N * D) / (causal ? 2 : 1);
    const reps = first.backend === "js" ? 1 : 5;
    const ms = await timeIt(() => attention(qt, kt, vt, options), reps);
    const p = await Effect.runPromise(resolveProblem(qt, kt, vt, options));
    let exactMs: number | undefined;
    if (backend.exactAttention) {
      const run = backend.exactAttention;
      exactMs = await timeIt(() => Effect.runPromise(run(p, qt, kt, vt)), reps);
    }
    if (!values.json) console.error("checking accuracy against float64 exact attention…");
    const ref = exactReference(p, toCanonicalF32(qt), toCanonicalF32(kt), toCanonicalF32(vt));
    const acc = accuracy(toCanonicalF32(first.output as HostTensor), ref.output);
    const report = {
      machine: machineName(),
      backend: first.backend,
      device: backend.device,
      rejected: first.rejected,
      shape: { B: 1, H, N, D, dtype, causal },
      ms,
      tops: flops / (ms * 1e9),
      exactMs,
      exactTops: exactMs ? flops / (exactMs * 1e9) : undefined,
      accuracy: acc,
    };
    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
      return EXIT_OK;
    }
    const gops = (x: number) => (x >= 1 ? `${x.toFixed(2)} TOPS` : `${(x * 1000).toFixed(1)} GOPS`);
    console.log(`sageattn demo on ${report.machine}`);
    console.log(`backend: ${report.backend} — ${report.device}`);
    for (const r of report.rejected) console.log(`  passed over ${r.backend}: ${r.reason} — ${r.message}`);
    console.log(
      `workload: B=1 H=${H} N=${N} D=${D} ${dtype}${causal ? " causal" : ""}, K with a per-channel bias N(0, 4²)`,
    );
    console.log(`sageattn:     ${ms.toFixed(1).padStart(9)} ms  ${gops(report.tops)}`);
    if (exactMs !== undefined) {
      console.log(
        `exact kernel: ${exactMs.toFixed(1).padStart(9)} ms  ${gops(report.exactTops!)}  (same backend; sageattn ${
          exactMs >= ms ? `${(exactMs / ms).toFixed(2)}× faster` : `${(ms / exactMs).toFixed(2)}× slower`
        })`,
      );
    }
    console.log(
      `accuracy vs float64 exact: cosine ${acc.cosine.toFixed(6)}, rel-L1 ${acc.relL1.toExponential(2)}, RMSE ${
        acc.rmse.toExponential(2)
      }, max abs ${acc.maxAbs.toExponential(2)}`,
    );
    return EXIT_OK;
  } catch (e) {
    // The demo draws its own inputs, so an input the library refuses (a head dim past a backend's limit, say) comes
    // from the command line: a usage error.
    const refused = (e as { _tag?: string })?._tag === "InvalidInput";
    return reportError("demo", refused ? new UsageError(describeError(e).message) : e);
  }
}
