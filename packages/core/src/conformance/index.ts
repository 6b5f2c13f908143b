/**
 * The conformance suite every backend runs against itself (vitest):
 *   await describeConformance(provider, { maxN: 256 });
 * Outputs are held to the sage oracle of the backend's P·V mode (tightly) and to exact attention (`BOUNDS`), by
 * `checkCase` (check.ts, which runs without vitest); bad inputs must give their tagged errors. A backend that cannot
 * load here is skipped visibly, and only for a reason the caller allows.
 */
import { Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import { attention, synchronize } from "../api.js";
import type { BackendProvider } from "../backend.js";
import type { DType } from "../dtype.js";
import type { UnavailableReason } from "../errors.js";
import { BOUNDS } from "../constants.js";
import { loadBackend, registerBackend } from "../registry.js";
import { type HostTensor, hostTensor, toCanonicalF32 } from "../tensor.js";
import { conformanceCases } from "./cases.js";
import { checkCase } from "./check.js";
import { describeDecodeConformance } from "./decode.js";
import { errorCases } from "./errors.js";

export { checkCase, checkOutput, type CheckResult, type OutputCheck } from "./check.js";
export { DECODE_APPENDS, type DecodeCase, decodeCases } from "./decode.js";
export {
  type FastCheckLike,
  type FuzzCase,
  fuzzCase,
  fuzzCheck,
  type FuzzDraw,
  fuzzDraws,
  type FuzzFault,
  type FuzzTarget,
} from "./fuzz.js";

export interface ConformanceOptions {
  /** Largest sequence length used (slow devices lower it). Default 1000. */
  readonly maxN?: number;
  /** Largest head dim used. Default 256. */
  readonly maxD?: number;
  /** Input dtypes to try, among those the backend supports. Default all. */
  readonly dtypes?: readonly DType[];
  /** Largest rel-L1 against the sage oracle (before output rounding). Default `BOUNDS.sageRelL1`. */
  readonly sageRelL1?: number;
  /** Reasons for which the backend may be unavailable here (e.g. NoDevice in CI); any other reason fails. */
  readonly unavailableOk?: readonly UnavailableReason[];
  /** Shown in the suite title, e.g. which code path a run forces. */
  readonly label?: string;
  /** Per-test timeout in ms. Default 120 000. */
  readonly timeout?: number;
}

// `out` must change where the output goes, never what it is: same bits as a call without it, padding untouched.
async function checkOut(provider: BackendProvider): Promise<void> {
  const backend = await Effect.runPromise(loadBackend(provider.name));
  const [B, H, N, D] = [1, 2, 40, 32];
  const make = (seed: number) =>
    hostTensor(Float32Array.from({ length: B * H * N * D }, (_, i) => Math.sin(i * 0.37 + seed) * 2), [B, H, N, D]);
  const [q, k, v] = [make(1), make(2), make(3)];
  const plain = await attention(q, k, v, { backend: provider.name, causal: true });
  if (plain.output.kind !== "host") throw new Error("host inputs gave a device output");
  const want = toCanonicalF32(plain.output);
  // Rows padded to D + 8 elements; the padding holds a sentinel that must survive.
  const rowStride = D + 8;
  const storage = new Float32Array(B * H * N * rowStride).fill(-7.5);
  const out = hostTensor(storage, [B, H, N, D], { strides: [H * N * rowStride, N * rowStride, rowStride, 1] });
  const r = await attention(q, k, v, { backend: provider.name, causal: true, out });
  expect(r.output).toBe(out);
  expect(Array.from(toCanonicalF32(out))).toEqual(Array.from(want));
  for (let i = 0; i < storage.length; i++) {
    if (i % rowStride >= D) expect(storage[i], `padding element ${i}`).toBe(-7.5);
  }
  if (!backend.capabilities.deviceTensors) return;
  const up = (t: HostTensor) => Effect.runPromise(backend.upload(t));
  const [dq, dk, dv] = [await up(q), await up(k), await up(v)];
  const dout = await up(hostTensor(new Float32Array(B * H * N * D).fill(Number.NaN), [B, H, N, D]));
  try {
    for (let i = 0; i < 2; i++) {
      const d = await attention(dq, dk, dv, { backend: provider.name, causal: true, out: dout });
      expect(d.output).toBe(dout);
    }
    await synchronize(provider.name);
    const got = await Effect.runPromise(backend.download(dout));
    expect(Array.from(toCanonicalF32(got))).toEqual(Array.from(want));
  } finally {
    for (const t of [dq, dk, dv, dout]) t.dispose();
  }
}

/** Registers `provider` and describes its conformance suite. Call with top-level await in a test file. */
export async function describeConformance(provider: BackendProvider, options: ConformanceOptions = {}): Promise<void> {
  registerBackend(provider);
  const exit = await Effect.runPromiseExit(loadBackend(provider.name));
  const title = `conformance: ${provider.name}${options.label ? ` (${options.label})` : ""}`;
  if (Exit.isFailure(exit)) {
    const err = exit.cause._tag === "Fail" ? exit.cause.error : undefined;
    const allowed = options.unavailableOk ?? [];
    describe(title, () => {
      it(`is unavailable here for an allowed reason (${err?.reason}: ${err?.message})`, () => {
        expect(err?._tag).toBe("BackendUnavailable");
        expect(allowed).toContain(err?.reason);
      });
      it.skip(`all cases skipped: ${provider.name} is unavailable (${err?.reason})`, () => {});
    });
    return;
  }
  const backend = exit.value;
  const limits = {
    maxN: options.maxN ?? 1000,
    maxD: options.maxD ?? 256,
    dtypes: options.dtypes ?? backend.capabilities.dtypes,
  };
  const timeout = options.timeout ?? 120_000;
  describe(title, () => {
    const cases = conformanceCases(backend.capabilities, limits);
    cases.forEach((c, i) => {
      it(c.name, async () => {
        const r = await checkCase(provider.name, c, 1000 + i, { sageRelL1: options.sageRelL1 });
        expect(r.failures, `${c.name} on ${provider.name}`).toEqual([]);
      }, timeout);
    });
    it(
      "writes into a caller's out tensor (host, strided; device, reused) exactly what it returns without one",
      () => checkOut(provider),
      timeout,
    );
    for (const e of errorCases(backend.capabilities)) {
      it(`rejects ${e.name} with ${e.tag}/${e.reason}`, async () => {
        const { q, k, v, options: o } = e.make();
        const err = await attention(q, k, v, { ...o, backend: provider.name }).then(
          () => undefined,
          (x: unknown) => x as { _tag?: string; reason?: string },
        );
        expect(err?._tag, "error tag").toBe(e.tag);
        expect(err?.reason, "error reason").toBe(e.reason);
      });
    }
    if (backend.capabilities.kvCache) {
      describeDecodeConformance(
        provider,
        backend,
        limits,
        {
          sageRelL1: options.sageRelL1 ?? BOUNDS.sageRelL1,
          outputRounding: BOUNDS.outputRounding,
          exactMinCosine: BOUNDS.exact.minCosine,
          exactMaxRelL1: BOUNDS.exact.maxRelL1,
          lseVsSage: BOUNDS.lseVsSage,
        },
        timeout,
      );
    }
  });
}
