/**
 * Issue #12's fuzzing, shared by the backends' fuzz tests: a fast-check arbitrary of drawn calls (shape, GQA,
 * Nq ≠ Nk, dtype, layout, strides, causal, masks, varlen, value ranges, smScale, validate, one deliberate fault) and
 * the check each backend's outcome must pass. The test passes in its own fast-check, so core gains no dependency:
 *   const draws = fuzzDraws<fc.Arbitrary<FuzzDraw>>(fc);
 *   await fc.assert(fc.asyncProperty(draws, async (d) => { expect(await fuzzCheck(d, targets)).toBeUndefined(); }));
 */
import { Effect, Exit } from "effect";
import { attention } from "../api.js";
import { type BackendName, type Capabilities, unsupportedBy } from "../backend.js";
import type { DType } from "../dtype.js";
import { type AttentionMask, type AttentionOptions, causalLimit, type Problem, resolveProblem } from "../problem.js";
import { gaussian, rng } from "../random.js";
import { checkOutput } from "./check.js";
import { loadBackend } from "../registry.js";
import { fromCanonicalF32, type HostTensor, hostTensor, type Layout, type Shape4, toCanonicalF32 } from "../tensor.js";

export type FuzzFault =
  | "none"
  | "nan"
  | "inf"
  | "dtype"
  | "typo"
  | "huge-qk"
  | "big-v"
  | "sm-scale"
  | "mask-range"
  | "huge-shape"
  | "null-options";

export interface FuzzDraw {
  readonly B: number;
  readonly Hkv: number;
  readonly group: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly D: number;
  readonly dtype: DType;
  readonly layout: Layout;
  readonly strided: boolean;
  readonly causal: boolean;
  readonly mask: "none" | "boolean" | "additive";
  readonly maskPerHead: boolean;
  readonly segments: number;
  readonly scale: number;
  readonly smScale: number | undefined;
  readonly pv: "f16-block" | "f32";
  readonly validate: boolean;
  readonly fault: FuzzFault;
  readonly seed: number;
}

/** What fuzzDraws uses of a fast-check module: typed loosely, as tests hold different majors (3.x via effect, 4.x). */
export interface FastCheckLike {
  record(model: object): unknown;
  integer(constraints: { min: number; max: number }): unknown;
  constantFrom(...values: unknown[]): unknown;
  boolean(): unknown;
}

/** The drawn calls, as `fc.Arbitrary<FuzzDraw>` of the caller's fast-check `fc`. */
export function fuzzDraws<Arbitrary>(fc: FastCheckLike): Arbitrary {
  return fc.record({
    B: fc.integer({ min: 1, max: 2 }),
    Hkv: fc.integer({ min: 1, max: 2 }),
    group: fc.integer({ min: 1, max: 3 }),
    Nq: fc.integer({ min: 1, max: 48 }),
    Nk: fc.integer({ min: 1, max: 80 }),
    D: fc.constantFrom(8, 16, 24, 32, 40),
    dtype: fc.constantFrom("f32", "f16", "bf16"),
    layout: fc.constantFrom("HND", "NHD"),
    strided: fc.boolean(),
    causal: fc.boolean(),
    mask: fc.constantFrom("none", "boolean", "additive"),
    maskPerHead: fc.boolean(),
    segments: fc.constantFrom(0, 0, 1, 2, 3),
    scale: fc.constantFrom(0.01, 0.5, 1, 3),
    smScale: fc.constantFrom(undefined, 0.05, 0.5),
    pv: fc.constantFrom("f16-block", "f32"),
    validate: fc.boolean(),
    fault: fc.constantFrom(
      "none",
      "none",
      "none",
      "none",
      "nan",
      "inf",
      "dtype",
      "typo",
      "huge-qk",
      "big-v",
      "sm-scale",
      "mask-range",
      "huge-shape",
      "null-options",
    ),
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
  }) as Arbitrary;
}

/** `t` (contiguous) copied into a buffer with a padded head-dim pitch, the gaps holding NaN: only strides find the values. */
function padded(t: HostTensor): HostTensor {
  const [a, b, c, D] = t.shape;
  const pitch = D + 3;
  const src = t.data;
  const data = src instanceof Float32Array
    ? new Float32Array(a * b * c * pitch).fill(NaN)
    : new Uint16Array(a * b * c * pitch).fill(0x7e00);
  for (let r = 0; r < a * b * c; r++) data.set(src.subarray(r * D, r * D + D), r * pitch);
  return hostTensor(data, t.shape, { dtype: t.dtype, layout: t.layout, strides: [b * c * pitch, c * pitch, pitch, 1] });
}

/** Cumulative lengths splitting n into `parts` pieces (empty pieces allowed). */
function cuts(n: number, parts: number, r: () => number): Int32Array {
  const inner = Array.from({ length: parts - 1 }, () => Math.floor(r() * (n + 1))).sort((x, y) => x - y);
  return Int32Array.from([0, ...inner, n]);
}

/** One drawn call's inputs. */
export interface FuzzCase {
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
  options: AttentionOptions;
  /** What must fail, and the words its message must hold; undefined when the call must succeed. */
  expectInvalid?: { reason: RegExp; message: RegExp };
}

/** The inputs and options of a draw (deterministic in the draw). */
export function fuzzCase(d: FuzzDraw): FuzzCase {
  const B = d.segments > 0 ? 1 : d.B;
  const Hq = d.Hkv * d.group;
  const r = rng(d.seed);
  const g = gaussian(r);
  const values = (n: number, s: number) => Float32Array.from({ length: n }, () => s * g());
  const vq = values(B * Hq * d.Nq * d.D, d.scale),
    vk = values(B * d.Hkv * d.Nk * d.D, d.scale),
    vv = values(B * d.Hkv * d.Nk * d.D, 1);
  if (d.fault === "huge-qk") {
    vq.fill(1e20);
    vk.fill(1e20);
  }
  if (d.fault === "big-v") vv[0] = d.pv === "f32" ? 70000 : 2000;
  if (d.fault === "nan" || d.fault === "inf") vq[0] = d.fault === "nan" ? NaN : Infinity;
  const dtype = d.fault === "huge-qk" || (d.fault === "big-v" && d.pv === "f32") ? "f32" : d.dtype; // keep the magnitude
  const make = (vals: Float32Array, H: number, N: number) => {
    const t = fromCanonicalF32(vals, { B, H, N, D: d.D }, dtype, d.layout);
    return d.strided ? padded(t) : t;
  };
  let q = make(vq, Hq, d.Nq);
  const k = make(vk, d.Hkv, d.Nk), v = make(vv, d.Hkv, d.Nk);
  const options: Record<string, unknown> = {
    causal: d.causal,
    validate: d.validate,
    pvAccumulation: d.pv,
    returnLse: true,
  };
  if (d.smScale !== undefined) options.smScale = d.smScale;
  if (d.segments > 0) options.varlen = { cuSeqlensQ: cuts(d.Nq, d.segments, r), cuSeqlensK: cuts(d.Nk, d.segments, r) };
  else if (d.mask !== "none") {
    const mh = d.maskPerHead ? Hq : 1;
    const n = B * mh * d.Nq * d.Nk;
    const mask: AttentionMask = d.mask === "boolean"
      ? { kind: "boolean", data: Uint8Array.from({ length: n }, () => (r() < 0.7 ? 1 : 0)), shape: [B, mh, d.Nq, d.Nk] }
      : {
        kind: "additive",
        data: Float32Array.from({ length: n }, () => (r() < 0.1 ? -Infinity : 4 * (r() - 0.5))),
        shape: [B, mh, d.Nq, d.Nk],
      };
    if (d.fault === "mask-range" && mask.kind === "additive") (mask.data as Float32Array)[n - 1] = 3e38;
    options.mask = mask;
  }
  const built: FuzzCase = { q, k, v, options };
  switch (d.fault) {
    case "nan":
    case "inf":
      if (d.validate) built.expectInvalid = { reason: /^NonFinite$/, message: /^q\[/ };
      break;
    case "dtype":
      q = { ...q, dtype: "f64" as DType };
      built.q = q;
      built.expectInvalid = { reason: /^DTypeMismatch$/, message: /^q has unknown dtype "f64"/ };
      break;
    case "typo":
      options.casual = d.causal;
      built.expectInvalid = { reason: /^InvalidOption$/, message: /unknown option "casual"; did you mean "causal"/ };
      break;
    case "huge-qk":
      if (d.validate) built.expectInvalid = { reason: /^OutOfRange$/, message: /^q and k magnitudes/ };
      break;
    case "big-v":
      if (d.validate) built.expectInvalid = { reason: /^OutOfRange$/, message: /^v holds/ };
      break;
    case "sm-scale":
      options.smScale = 1e38;
      built.expectInvalid = { reason: /^OutOfRange$/, message: /^smScale/ };
      break;
    case "mask-range":
      if (options.mask && (options.mask as AttentionMask).kind === "additive") {
        built.expectInvalid = { reason: /^OutOfRange$/, message: /^additive mask\[/ };
      }
      break;
    case "huge-shape":
      built.k = hostTensor(k.data, [B, 1 << 30, 1 << 30, d.D] as Shape4, {
        dtype: k.dtype,
        layout: d.layout,
        strides: [0, 0, 0, 1],
      });
      built.expectInvalid = { reason: /^InvalidShape$/, message: /^k / };
      break;
    case "null-options":
      built.options = null as unknown as AttentionOptions;
      built.expectInvalid = { reason: /^InvalidOption$/, message: /^options must be an object/ };
      break;
  }
  return built;
}

/** A backend under fuzzing, and its rel-L1 bound against the sage oracle (before output rounding). */
export interface FuzzTarget {
  readonly name: BackendName;
  /** Default `BOUNDS.sageRelL1`. */
  readonly sageRelL1?: number;
}

type Outcome = { readonly failure: string } | { readonly output?: Float32Array; readonly capabilities?: Capabilities };

/**
 * The problem a valid case describes, resolved as the call was (its validate setting included: scanned, the P·V
 * accumulation and V's scale follow the values), or undefined where it has none.
 */
function problemOf(c: FuzzCase): Problem | undefined {
  if (c.expectInvalid || c.options === null) return undefined;
  const exit = Effect.runSyncExit(resolveProblem(c.q, c.k, c.v, c.options));
  return Exit.isSuccess(exit) ? exit.value : undefined;
}

/**
 * One backend's outcome: a failure description; no output where the call rightly failed (the expected InvalidInput,
 * or Unsupported for exactly what its capabilities say it lacks); else its canonical f32 output.
 */
async function outcomeOf(c: FuzzCase, p: Problem | undefined, name: BackendName): Promise<Outcome> {
  const loaded = await Effect.runPromiseExit(loadBackend(name));
  if (Exit.isFailure(loaded)) return { failure: `${name} did not load` };
  const caps: Capabilities = loaded.value.capabilities;
  const lacks = p && unsupportedBy(caps, p);
  const options = c.options === null ? (null as unknown as AttentionOptions) : { ...c.options, backend: name };
  const settled = await attention(c.q, c.k, c.v, options).then(
    (r) => ({ ok: true as const, r }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  if (!settled.ok) {
    const e = settled.e as { _tag?: string; reason?: string; message?: string } | undefined;
    if (e?._tag === "BackendUnavailable" && e.reason === "Unsupported" && lacks && e.message === lacks) return {};
    if (e?._tag !== "InvalidInput") {
      return {
        failure: `${name}: untagged or unexpected error: ${e?._tag ?? ""} ${e?.reason ?? ""} ${
          String(e?.message ?? e)
        }`,
      };
    }
    if (!c.expectInvalid) return { failure: `${name}: unexpected ${e.reason}: ${e.message}` };
    if (!c.expectInvalid.reason.test(e.reason ?? "") || !c.expectInvalid.message.test(e.message ?? "")) {
      return {
        failure: `${name}: ${e.reason}: ${e.message}; expected ${c.expectInvalid.reason} / ${c.expectInvalid.message}`,
      };
    }
    return {};
  }
  if (c.expectInvalid) return { failure: `${name} succeeded, but should fail with ${c.expectInvalid.message}` };
  if (lacks) return { failure: `${name} succeeded, but its capabilities say: ${lacks}` };
  if (settled.r.backend !== name) return { failure: `ran on ${settled.r.backend}, not ${name}` };
  if (settled.r.output.kind !== "host") return { failure: `${name}: host inputs gave a device output` };
  return { output: toCanonicalF32(settled.r.output), capabilities: caps };
}

/**
 * Runs draw `d` on each target: undefined when every outcome is right, else what went wrong. Right is: a result
 * within the target's sage bound; the expected tagged InvalidInput; BackendUnavailable/Unsupported for an option its
 * capabilities lack; with validate: false, a non-finite input visible in the output.
 */
export async function fuzzCheck(d: FuzzDraw, targets: readonly FuzzTarget[]): Promise<string | undefined> {
  const c = fuzzCase(d);
  const p = problemOf(c);
  const outputs: [FuzzTarget, Float32Array, Capabilities][] = [];
  for (const t of targets) {
    const o = await outcomeOf(c, p, t.name);
    if ("failure" in o) return o.failure;
    if (o.output && o.capabilities) outputs.push([t, o.output, o.capabilities]);
  }
  if (outputs.length === 0) return undefined;
  if (!p) return `${outputs[0][0].name} succeeded on a call whose problem does not resolve`;
  if (d.fault === "nan" || d.fault === "inf") {
    // validate: false: the bad value is in q row 0 of batch 0, head 0; that row must not come out finite unless
    // causality leaves it no key at all.
    const sees = !d.causal || causalLimit(0, d.Nq, d.Nk) > 0;
    if (sees && d.segments === 0) {
      for (const [t, got] of outputs) {
        if (!got.subarray(0, d.D).some((x) => !Number.isFinite(x))) {
          return `${t.name}: row 0 hides the non-finite input`;
        }
      }
    }
    return undefined;
  }
  if (d.fault === "huge-qk" || d.fault === "big-v") return undefined; // validate: false out of range: the caller vouched
  const [q, k, v] = [c.q, c.k, c.v].map(toCanonicalF32);
  // Each backend is held to the oracle of its own P·V mode (Capabilities.pv), as in the conformance suite.
  for (const [t, output, capabilities] of outputs) {
    const r = checkOutput({
      problem: { ...p, returnLse: false },
      q,
      k,
      v,
      output,
      capabilities,
      sageRelL1: t.sageRelL1,
    });
    if (!r.ok) return `${t.name}: ${r.failures.join("; ")}`;
  }
  return undefined;
}
