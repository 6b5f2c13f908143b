/**
 * The conformance check without a test runner: one case run through the public `attention()` and its output held
 * to the sage oracle of the backend's P·V mode, to exact attention and to the LSE bound (`BOUNDS`, constants.ts).
 * The vitest suite (index.ts), the fuzzer, the GPU machine's device check, the benches and the browser test all call
 * this, so a bound or a rule changes in one place; decode-check.ts (re-exported here) holds KV caches to the same
 * rule. Imports no test runner:
 *   import { checkCase } from "@sageattn/core/conformance/check";
 *   const r = await checkCase("cuda", c, 1000); if (!r.ok) console.log(r.failures);
 */
import { Effect } from "effect";
import { attention } from "../api.js";
import { type BackendName, type Capabilities, pvOracleMode } from "../backend.js";
import { BOUNDS, exactBound, type PvAccumulation } from "../constants.js";
import { type Accuracy, accuracy } from "../metrics.js";
import { exactReference } from "../oracle-exact.js";
import { sageReference } from "../oracle-sage.js";
import { type AttentionOptions, type Problem, resolveProblem } from "../problem.js";
import { loadBackend } from "../registry.js";
import { toCanonicalF32 } from "../tensor.js";
import type { Case } from "./cases.js";
import { caseInputs } from "./inputs.js";

/** An output to judge, with its inputs in canonical f32 ([B, H, N, D] rows). */
export interface OutputCheck {
  readonly problem: Problem;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** The backend's output, canonical f32. */
  readonly output: Float32Array;
  /** The backend's LSE, when the problem asks for it. */
  readonly lse?: Float32Array;
  /** The capabilities of the backend that computed it (which P·V oracle it must track). */
  readonly capabilities: Capabilities;
  /** Largest rel-L1 against the sage oracle, before output rounding. Default `BOUNDS.sageRelL1`. */
  readonly sageRelL1?: number;
  /** Hold the output to exact attention too; "heavy-tail" uses the looser bound. */
  readonly exact?: "normal" | "heavy-tail";
  /** The smoothing mean the oracle uses instead of computing one (a KV cache's), f32 [S, Hkv, D]. */
  readonly kMean?: Float32Array;
}

/** What a check found: `failures` is empty when the output passes, each entry naming what broke. */
export interface CheckResult {
  readonly ok: boolean;
  readonly failures: readonly string[];
  readonly vsSage: Accuracy;
  /** Against exact attention, when the check asked for it. */
  readonly vsExact?: Accuracy;
  /** Largest |lse − oracle| / max(1, |oracle|) over finite rows, when an LSE was checked. */
  readonly lseError?: number;
  /** The P·V oracle variant the output was held to. */
  readonly pvOracle: PvAccumulation;
}

/** Judges one output against the oracles and `BOUNDS`. Pure: no backend, no runner. */
export function checkOutput(c: OutputCheck): CheckResult {
  const p = c.problem;
  const failures: string[] = [];
  const rounding = BOUNDS.outputRounding[p.outputDtype];
  const sageBound = (c.sageRelL1 ?? BOUNDS.sageRelL1) + rounding;
  // A V too small for f16 ran scaled by 2^vShift and came back scaled down (v-scale.ts): the oracle does the same.
  const sageOf = (pvAccumulation: PvAccumulation) => {
    if (!p.vShift) return sageReference({ ...p, pvAccumulation }, c.q, c.k, c.v, c.kMean);
    const f = 2 ** p.vShift;
    const r = sageReference({ ...p, pvAccumulation }, c.q, c.k, c.v.map((x) => x * f), c.kMean);
    return { ...r, output: r.output.map((x) => x / f) };
  };
  let pvOracle = pvOracleMode(c.capabilities, p.pvAccumulation);
  let sage = sageOf(pvOracle);
  let vsSage = accuracy(c.output, sage.output);
  // f16-block sums are an allowance, not a requirement: tensor cores round once per 16-key MMA step, not after every
  // key as the oracle does, so on coherent data (a constant V) they land nearer the f32 oracle. Either one passes.
  if (pvOracle === "f16-block" && !(vsSage.relL1 <= sageBound)) {
    const f32 = sageOf("f32");
    const vsF32 = accuracy(c.output, f32.output);
    if (vsF32.relL1 <= sageBound) [pvOracle, sage, vsSage] = ["f32", f32, vsF32];
  }
  if (vsSage.nonFinite !== 0) failures.push(`${vsSage.nonFinite} non-finite outputs`);
  if (!(vsSage.relL1 <= sageBound)) {
    failures.push(`rel-L1 vs sage oracle (${pvOracle}) ${vsSage.relL1} over ${sageBound} (cos ${vsSage.cosine})`);
  }
  // Rows that see no key (the oracle's LSE is −∞) must be exact zeros: not NaN, not garbage.
  for (let r = 0; r < sage.lse.length && failures.length < 8; r++) {
    if (sage.lse[r] === -Infinity) {
      for (let d = 0; d < p.D; d++) {
        if (c.output[r * p.D + d] !== 0) {
          failures.push(`row ${r} sees no key but holds ${c.output[r * p.D + d]} at channel ${d}`);
          break;
        }
      }
    }
  }
  let vsExact: Accuracy | undefined;
  if (c.exact) {
    vsExact = accuracy(c.output, exactReference(p, c.q, c.k, c.v).output);
    const bound = exactBound(c.exact === "heavy-tail", p.pvAccumulation);
    if (!(vsExact.cosine >= bound.minCosine)) {
      failures.push(`cosine vs exact ${vsExact.cosine} under ${bound.minCosine}`);
    }
    if (!(vsExact.relL1 <= bound.maxRelL1 + rounding)) {
      failures.push(`rel-L1 vs exact ${vsExact.relL1} over ${bound.maxRelL1 + rounding}`);
    }
  }
  let lseError: number | undefined;
  if (p.returnLse) {
    const lse = c.lse;
    if (!lse) failures.push("no LSE returned");
    else if (lse.length !== sage.lse.length) failures.push(`LSE has ${lse.length} rows, the oracle ${sage.lse.length}`);
    else {
      lseError = 0;
      for (let r = 0; r < lse.length; r++) {
        const want = sage.lse[r];
        if (want === -Infinity) {
          if (lse[r] !== -Infinity && failures.length < 8) {
            failures.push(`lse row ${r} is ${lse[r]}, not −∞ (it sees no key)`);
          }
          continue;
        }
        const err = Math.abs(lse[r] - want) / Math.max(1, Math.abs(want));
        if (!(err <= lseError)) lseError = err;
        if (!(err <= BOUNDS.lseVsSage) && failures.length < 8) failures.push(`lse row ${r}: ${lse[r]} vs ${want}`);
      }
    }
  }
  return { ok: failures.length === 0, failures, vsSage, vsExact, lseError, pvOracle };
}

/** The options a conformance case calls `attention()` with (its mask and varlen included). */
export function caseOptions(c: Case, inputs: ReturnType<typeof caseInputs>, backend: BackendName): AttentionOptions {
  return {
    ...c.options,
    backend,
    mask: inputs.mask,
    varlen: c.varlen ? { cuSeqlensQ: Int32Array.from(c.varlen.q), cuSeqlensK: Int32Array.from(c.varlen.k) } : undefined,
  };
}

/**
 * Runs conformance case `c` (inputs drawn with `seed`) on the named backend through `attention()` and checks the
 * result: the backend that ran, host output of the problem's dtype and layout, then `checkOutput`.
 */
export async function checkCase(
  backend: BackendName,
  c: Case,
  seed: number,
  options: { readonly sageRelL1?: number } = {},
): Promise<CheckResult> {
  const loaded = await Effect.runPromise(loadBackend(backend));
  const inputs = caseInputs(c, seed);
  const callOptions = caseOptions(c, inputs, backend);
  const result = await attention(inputs.q, inputs.k, inputs.v, callOptions);
  const p = Effect.runSync(resolveProblem(inputs.q, inputs.k, inputs.v, callOptions));
  const out = result.output;
  const shapeFailures: string[] = [];
  if (result.backend !== backend) shapeFailures.push(`ran on ${result.backend}, not ${backend}`);
  if (out.kind !== "host") throw new Error(`${backend}: host inputs gave a device output`);
  if (out.dtype !== p.outputDtype) shapeFailures.push(`output dtype ${out.dtype}, expected ${p.outputDtype}`);
  if (out.layout !== p.layout) shapeFailures.push(`output layout ${out.layout}, expected ${p.layout}`);
  const [q, k, v] = [inputs.q, inputs.k, inputs.v].map(toCanonicalF32);
  const checked = checkOutput({
    problem: p,
    q,
    k,
    v,
    output: toCanonicalF32(out),
    lse: result.lse,
    capabilities: loaded.capabilities,
    sageRelL1: options.sageRelL1,
    exact: c.checkExact ? (c.dist === "heavy-tail" ? "heavy-tail" : "normal") : undefined,
  });
  const failures = [...shapeFailures, ...checked.failures];
  return { ...checked, ok: failures.length === 0, failures };
}

export { type Case, type CaseLimits, type CaseShape, conformanceCases } from "./cases.js";
export { type ErrorCase, errorCases } from "./errors.js";
export { type CaseInputs, caseInputs } from "./inputs.js";
export {
  checkAttend,
  checkDecodeCase,
  DECODE_APPENDS,
  DECODE_ROWS,
  type DecodeCase,
  decodeCases,
  type DecodeCheck,
  decodeSpec,
} from "./decode-check.js";
