// Issue #12: property-based fuzzing of the public `attention` on js (core's sage oracle) and cpu-simd. Each drawn
// case (core's conformance `fuzzDraws`: shape, GQA, Nq ≠ Nk, dtype, layout, strides, causal, masks, varlen, value
// ranges, smScale, validate, one deliberate fault) must end in exactly one of: a result within the sage bounds; a
// tagged InvalidInput whose reason and message name the field that was wrong; with validate: false, a non-finite
// input visible in the output. Never an untagged throw, a hang or a silent non-finite. fast-check prints the seed
// and path of a failing case; FUZZ_SEED=<seed> replays a run. FUZZ_RUNS sets the number of cases (default 1000,
// each run on both backends).
import { disposeBackends, readEnv, registerBackend } from "@sageattn/core";
import { fuzzCheck, type FuzzDraw, fuzzDraws, type FuzzTarget } from "@sageattn/core/conformance";
import { Effect } from "effect";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { provider } from "./index.js";

registerBackend(provider);
afterAll(() => Effect.runPromise(disposeBackends()));

const RUNS = Number(readEnv("FUZZ_RUNS") ?? 1000);
const SEED = readEnv("FUZZ_SEED");
// The bounds the conformance suite holds each backend to against the sage oracle (rel-L1).
const TARGETS: readonly FuzzTarget[] = [
  { name: "js", sageRelL1: 1e-6 },
  { name: "cpu-simd" }, // BOUNDS.sageRelL1
];

describe("fuzzed calls on js and cpu-simd", () => {
  it(`${RUNS} drawn cases on each backend: within the sage bounds, or InvalidInput naming the field`, async () => {
    await fc.assert(
      fc.asyncProperty(fuzzDraws<fc.Arbitrary<FuzzDraw>>(fc), async (d) => {
        expect(await fuzzCheck(d, TARGETS)).toBeUndefined();
      }),
      { numRuns: RUNS, seed: SEED === undefined ? undefined : Number(SEED), endOnFailure: true },
    );
  }, 600_000);
});
