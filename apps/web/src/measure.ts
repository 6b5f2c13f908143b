import {
  type Accuracy,
  accuracy,
  attention,
  type AttentionOptions,
  type Capabilities,
  type Distribution,
  type DType,
  exactAttention,
  fromCanonicalF32,
  getBackend,
  type HostTensor,
  makeQKV,
  type Rejection,
  resolveProblem,
  runToPromise,
  toCanonicalF32,
} from "@sageattn/core";

/** What the person asked for. Batch is 1; query and key/value heads are equal (no GQA) to keep the form short. */
export interface RunRequest {
  readonly heads: number;
  readonly tokens: number;
  readonly headDim: number;
  readonly causal: boolean;
  readonly dtype: DType;
  readonly distribution: Distribution;
  /** A backend name, or undefined for automatic selection. */
  readonly backend: string | undefined;
}

/** Median time of the timed runs, and how many there were. */
export interface Timing {
  readonly ms: number;
  readonly runs: number;
  /** Tera-operations per second: 4·H·N²·D (halved when causal) over the median time. */
  readonly tops: number;
  /** Where it ran, in words. */
  readonly engine: string;
}

export interface RunReport {
  readonly request: RunRequest;
  readonly backend: string;
  readonly device: string;
  /** What the backend that ran can do (its P·V mode among them: which sage oracle its output tracks). */
  readonly capabilities: Capabilities;
  /** The backend's own account of itself (build, threads, adapter, tile…), read after the run. */
  readonly details: Readonly<Record<string, string>>;
  readonly rejected: readonly Rejection[];
  readonly sage: Timing;
  readonly exact: Timing;
  /** Exact attention ran on the backend's own exact kernel (else on core's float64 reference in JavaScript). */
  readonly exactOnSameEngine: boolean;
  /** SageAttention's output against exact attention in float64. */
  readonly accuracy: Accuracy;
  /** Canonical HND f32 inputs and outputs, for the per-head maps (and for a test to judge the run by). */
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly sageOutput: Float32Array;
  readonly exactOutput: Float32Array;
}

/** Timed runs stop after this many, or once this much time has gone by (a slow CPU should not wait minutes). */
const MAX_TIMED_RUNS = 5;
const TIME_BUDGET_MS = 1500;
/** Inputs are drawn from a fixed seed so a run can be repeated and compared across backends. */
const SEED = 7;

/** Lets the browser paint (status messages) between long steps. */
export const nextFrame = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export function operations(r: RunRequest): number {
  const ops = 4 * r.heads * r.tokens * r.tokens * r.headDim;
  return r.causal ? ops / 2 : ops;
}

async function timeRuns(run: () => Promise<unknown>, ops: number, engine: string): Promise<Timing> {
  const times: number[] = [];
  const start = performance.now();
  while (times.length < MAX_TIMED_RUNS && (times.length === 0 || performance.now() - start < TIME_BUDGET_MS)) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
    await nextFrame();
  }
  times.sort((a, b) => a - b);
  const ms = times[Math.floor(times.length / 2)];
  return { ms, runs: times.length, tops: ops / (ms * 1e-3) / 1e12, engine };
}

function makeInputs(r: RunRequest): { q: HostTensor; k: HostTensor; v: HostTensor } {
  const sizes = { B: 1, Hq: r.heads, Hkv: r.heads, Nq: r.tokens, Nk: r.tokens, D: r.headDim };
  const raw = makeQKV(sizes, r.distribution, SEED);
  const dims = { B: 1, H: r.heads, N: r.tokens, D: r.headDim };
  return {
    q: fromCanonicalF32(raw.q, dims, r.dtype, "HND"),
    k: fromCanonicalF32(raw.k, dims, r.dtype, "HND"),
    v: fromCanonicalF32(raw.v, dims, r.dtype, "HND"),
  };
}

/**
 * Runs SageAttention (one warm-up, then timed runs) on the requested or automatically chosen backend, times exact
 * attention on the same engine when the backend has an exact kernel (else core's float64 reference), and measures
 * accuracy against the float64 reference. `progress` receives a line for the status bar before each step.
 */
export async function measure(r: RunRequest, progress: (line: string) => void): Promise<RunReport> {
  progress("Drawing inputs…");
  await nextFrame();
  const { q, k, v } = makeInputs(r);
  const options: AttentionOptions = { causal: r.causal, backend: r.backend };
  const ops = operations(r);

  progress(r.backend ? `Loading ${r.backend} and warming up…` : "Choosing a backend and warming up…");
  await nextFrame();
  const first = await attention(q, k, v, options);
  const backend = await getBackend(first.backend);

  progress(`Timing SageAttention on ${first.backend}…`);
  await nextFrame();
  const pinned: AttentionOptions = { ...options, backend: first.backend };
  let last = first;
  const sage = await timeRuns(
    async () => (last = await attention(q, k, v, pinned)),
    ops,
    `${first.backend}, INT8 kernel`,
  );

  progress("Computing exact attention…");
  await nextFrame();
  const exactOnEngine = backend.exactAttention?.bind(backend);
  let exact: Timing | undefined;
  if (exactOnEngine) {
    const problem = await runToPromise(resolveProblem(q, k, v, pinned));
    await runToPromise(exactOnEngine(problem, q, k, v)); // warm-up
    exact = await timeRuns(() => runToPromise(exactOnEngine(problem, q, k, v)), ops, `${first.backend}, exact kernel`);
  }
  const t0 = performance.now();
  const reference = await exactAttention(q, k, v, { causal: r.causal, outputDtype: "f32" });
  const refMs = performance.now() - t0;
  exact ??= { ms: refMs, runs: 1, tops: ops / (refMs * 1e-3) / 1e12, engine: "JavaScript float64 (core's reference)" };

  const sageOutput = toCanonicalF32(last.output as HostTensor);
  const exactOutput = toCanonicalF32(reference.output);
  return {
    request: r,
    backend: first.backend,
    device: backend.device,
    capabilities: backend.capabilities,
    details: { ...backend.details },
    rejected: first.rejected,
    sage,
    exact,
    exactOnSameEngine: exactOnEngine !== undefined,
    accuracy: accuracy(sageOutput, exactOutput),
    q: toCanonicalF32(q),
    k: toCanonicalF32(k),
    v: toCanonicalF32(v),
    sageOutput,
    exactOutput,
  };
}
