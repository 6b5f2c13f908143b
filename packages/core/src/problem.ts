import { Effect } from "effect";
import { bf16BitsToF32, type DType, DTYPES, F16_MAX, f16BitsToF32 } from "./dtype.js";
import { invalid, type InvalidInput } from "./errors.js";
import { OPTION_NAMES, suggestOption } from "./option-names.js";
import {
  K_BLOCK,
  LOG2E,
  PV_ACCUMULATIONS,
  type PvAccumulation,
  QK_GRANULARITIES,
  type QkGranularity,
} from "./constants.js";
import { dims, type HostData, type Layout, requiredLength, type Shape4, shapeFor, type Tensor } from "./tensor.js";
import { vShift } from "./v-scale.js";
import { forEachIndex } from "./strided.js";

/** Largest head dimension any backend accepts. */
export const MAX_HEAD_DIM = 256;

/**
 * Most elements a host tensor may address (its logical size, zero strides included): 2^32, the most any host
 * path can copy into one typed array. Checked before any O(size) work (the finite check, copies).
 */
export const MAX_HOST_ELEMENTS = 2 ** 32;

/**
 * Largest base-2 logit magnitude a call may produce (|smScale·log2e·q·(k − mean)|·D, and an additive mask's
 * |bias·log2e|): 2^126 leaves f32 headroom for the sum of the two and for the online softmax's differences.
 */
export const LOGIT_LIMIT = 2 ** 126;

/**
 * A mask over logits, broadcast over batch and heads: shape [Bm, Hm, Nq, Nk] with Bm ∈ {1, B}, Hm ∈ {1, Hq}.
 * "boolean": nonzero keeps a key, zero hides it. "additive": added to the natural-log-scale logits (−∞ hides).
 */
export interface AttentionMask {
  readonly kind: "boolean" | "additive";
  readonly data: Uint8Array | Float32Array;
  readonly shape: Shape4;
}

/**
 * Several sequences packed along N (B must be 1): sequence s owns queries cuSeqlensQ[s]..cuSeqlensQ[s+1]
 * and keys cuSeqlensK[s]..cuSeqlensK[s+1]. Smoothing, quantization blocks and causality restart per sequence.
 */
export interface Varlen {
  readonly cuSeqlensQ: Int32Array;
  readonly cuSeqlensK: Int32Array;
}

export interface AttentionOptions {
  /** Key j is visible to query i iff j ≤ i + (Nk − Nq) (bottom-right, the KV-cache convention). */
  readonly causal?: boolean;
  /** Logit scale; 1/sqrt(D) by default. */
  readonly smScale?: number;
  /** Also return the natural-log LSE per (b, head, query), f32 [B, Hq, Nq]. */
  readonly returnLse?: boolean;
  readonly mask?: AttentionMask;
  readonly varlen?: Varlen;
  /** Output element type; the input's by default. */
  readonly outputDtype?: DType;
  /**
   * "f16-block": P·V summed in f16 within a K block then in f32 (the paper); "f32": f32 throughout; "fp8": P and V
   * scaled to FP8 e4m3 (V per channel), each K block summed in f32 then added in f32 (SageAttention2; js only for now);
   * "int8": P as 0..255 per (row, 128-key block) and V as INT8 per channel, each block summed exactly in int32 then
   * added in f32 (js, and cuda's Hopper kernel). A backend that cannot is passed over (Unsupported).
   */
  readonly pvAccumulation?: PvAccumulation;
  /**
   * How finely Q and K are quantized: "block" (default) Q per 128 tokens, K per 64; "warp" Q per 16 (one warp's MMA
   * rows); "row" Q per token, K per 16 adjacent keys; "thread" Q per token, K per 16 keys grouped as one thread holds
   * them in an MMA tile (K_THREAD_SPAN). "row" and "thread" are for inputs with a few massive channels, about equally
   * accurate there; "thread" is the faster on cuda (js and cuda).
   */
  readonly qkGranularity?: QkGranularity;
  /** Subtract the mean of K over tokens before quantizing (on by default; off only to show why it matters). */
  readonly smoothK?: boolean;
  /**
   * Scan host inputs (on by default): NaN/±inf and values whose logits or P·V would overflow are refused. `false`
   * skips the scans (the caller vouches for finite values, |v| ≤ 65504 and logits within f32), but for one pass over a
   * host V where the backend would sum P·V in f16 blocks: past 65504/64 it sums in f32, as with the scans.
   */
  readonly validate?: boolean;
  /** Run on this backend only (else `SAGEATTN_BACKEND`, else the best available). */
  readonly backend?: string;
  /**
   * Write the output here instead of allocating it: a host tensor for host inputs, a device tensor of the same
   * backend for device inputs, shaped [B, Hq, Nq, D] in the inputs' layout (any strides), of the output dtype
   * (it sets `outputDtype` when that is not given). Reusing one lets a steady-state call allocate nothing.
   */
  readonly out?: Tensor;
}

/** A validated call: logical sizes and every option resolved. What a backend receives. */
export interface Problem {
  readonly B: number;
  readonly Hq: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly D: number;
  /** Query heads per kv head: query head h reads kv head floor(h / group). */
  readonly group: number;
  readonly dtype: DType;
  readonly layout: Layout;
  readonly outputDtype: DType;
  readonly causal: boolean;
  readonly smScale: number;
  readonly returnLse: boolean;
  readonly mask: AttentionMask | undefined;
  readonly varlen: Varlen | undefined;
  readonly pvAccumulation: PvAccumulation;
  /**
   * True when the caller left `pvAccumulation` out: a backend may then sum P·V in f32 instead of f16 blocks where that
   * is faster (f32 sums are the more accurate of the two, so the f16-block bounds still hold). False when asked for.
   */
  readonly pvAuto?: boolean;
  readonly qkGranularity: QkGranularity;
  readonly smoothK: boolean;
  /** The caller's output tensor (validated against the call), or undefined to allocate one. */
  readonly out: Tensor | undefined;
  /** True when q, k, v are host tensors that were scanned and hold only finite values: a backend may skip NaN handling. */
  readonly validated?: boolean;
  /**
   * Core's own, not a backend's: V is too small for f16, so the backend gets V·2^vShift and core scales its output
   * back (v-scale.ts). Set by resolveProblem for a scanned host V on the sage path; absent otherwise.
   */
  readonly vShift?: number;
}

const isPosInt = (x: number) => Number.isInteger(x) && x > 0;

/** The largest |x| a host tensor holds where its shape and strides reach, or the first non-finite element as an error. */
export function scanHost(t: Tensor, name: string): InvalidInput | number {
  if (t.kind !== "host") return 0;
  const data = t.data;
  let bad = -1;
  let maxAbs = 0;
  if (data instanceof Float32Array) {
    forEachIndex(t, (i) => {
      const x = data[i];
      if (!Number.isFinite(x)) bad = i;
      else if (Math.abs(x) > maxAbs) maxAbs = Math.abs(x);
      return bad < 0;
    });
  } else {
    // f16: exponent bits 0x7c00 all set means inf/NaN; bf16: 0x7f80. Magnitude bits order like the values.
    const m = t.dtype === "bf16" ? 0x7f80 : 0x7c00;
    let maxBits = 0;
    forEachIndex(t, (i) => {
      const x = data[i];
      if ((x & m) === m) bad = i;
      else if ((x & 0x7fff) > maxBits) maxBits = x & 0x7fff;
      return bad < 0;
    });
    maxAbs = t.dtype === "bf16" ? bf16BitsToF32(maxBits) : f16BitsToF32(maxBits);
  }
  if (bad < 0) return maxAbs;
  const shown = data instanceof Float32Array ? String(data[bad]) : `bits 0x${data[bad].toString(16)}`;
  return invalid("NonFinite", `${name}[${bad}] is not finite (${shown})`);
}

const isShape4 = (x: unknown): x is Shape4 => Array.isArray(x) && x.length === 4;

/** Why `t` is not a well-formed tensor (kind, dtype, layout, rank, sizes, strides, storage), or undefined. */
export function checkTensor(t: Tensor, name: string): InvalidInput | undefined {
  if (typeof t !== "object" || t === null || (t.kind !== "host" && t.kind !== "device")) {
    return invalid("InvalidShape", `${name} is not a tensor`);
  }
  if (!(DTYPES as readonly unknown[]).includes(t.dtype)) {
    return invalid("DTypeMismatch", `${name} has unknown dtype ${JSON.stringify(t.dtype)} (f32, f16 or bf16)`);
  }
  if (t.layout !== "HND" && t.layout !== "NHD") {
    return invalid("LayoutMismatch", `${name} has unknown layout ${String(t.layout)}`);
  }
  if (!isShape4(t.shape)) {
    return invalid("InvalidShape", `${name} must have 4 dimensions, got ${JSON.stringify(t.shape)}`);
  }
  if (t.shape[3] === 0) return invalid("InvalidHeadDim", `${name} has head dim 0`);
  if (t.shape.some((x) => x === 0)) return invalid("EmptyTensor", `${name} is empty: shape ${JSON.stringify(t.shape)}`);
  if (!t.shape.every(isPosInt)) return invalid("InvalidShape", `${name} has a bad shape ${JSON.stringify(t.shape)}`);
  if (!isShape4(t.strides) || !t.strides.every((s) => Number.isSafeInteger(s) && s >= 0)) {
    return invalid("InvalidShape", `${name} has bad strides ${JSON.stringify(t.strides)}`);
  }
  const elements = t.shape[0] * t.shape[1] * t.shape[2] * t.shape[3];
  if (!Number.isSafeInteger(elements) || !Number.isSafeInteger(requiredLength(t))) {
    return invalid(
      "InvalidShape",
      `${name} is too large: shape ${JSON.stringify(t.shape)} with strides ${
        JSON.stringify(t.strides)
      } overflows an index`,
    );
  }
  if (t.kind === "host") {
    const want = t.dtype === "f32" ? Float32Array : Uint16Array;
    if (!(t.data instanceof want)) {
      return invalid(
        "DTypeMismatch",
        `${name} says ${t.dtype} but holds a ${
          (t.data as { constructor?: { name?: string } } | undefined)?.constructor?.name
        }`,
      );
    }
    if (elements > MAX_HOST_ELEMENTS) {
      return invalid("InvalidShape", `${name} addresses ${elements} elements, over the host limit of 2^32`);
    }
    const need = requiredLength(t);
    if (t.data.length < need) {
      return invalid("InvalidShape", `${name} needs ${need} elements for its shape and strides, has ${t.data.length}`);
    }
  }
  return undefined;
}

function checkVarlen(v: Varlen, B: number, Nq: number, Nk: number): InvalidInput | undefined {
  const { cuSeqlensQ: cq, cuSeqlensK: ck } = v;
  if (!(cq instanceof Int32Array) || !(ck instanceof Int32Array)) {
    return invalid("InvalidVarlen", "cuSeqlensQ and cuSeqlensK must be Int32Arrays");
  }
  if (B !== 1) return invalid("InvalidVarlen", `varlen packs sequences along N: B must be 1, got ${B}`);
  if (cq.length < 2 || cq.length !== ck.length) {
    return invalid("InvalidVarlen", "cuSeqlensQ and cuSeqlensK need the same length ≥ 2");
  }
  if (cq[0] !== 0 || ck[0] !== 0) return invalid("InvalidVarlen", "cumulative sequence lengths start at 0");
  for (let s = 1; s < cq.length; s++) {
    if (cq[s] < cq[s - 1] || ck[s] < ck[s - 1]) {
      return invalid("InvalidVarlen", `cumulative sequence lengths must not decrease (at ${s})`);
    }
  }
  if (cq[cq.length - 1] !== Nq || ck[ck.length - 1] !== Nk) {
    return invalid(
      "InvalidVarlen",
      `cumulative lengths end at ${cq[cq.length - 1]}/${ck[ck.length - 1]}, tensors hold ${Nq}/${Nk} tokens`,
    );
  }
  return undefined;
}

function checkMask(m: AttentionMask, B: number, Hq: number, Nq: number, Nk: number): InvalidInput | undefined {
  if (typeof m !== "object" || m === null) {
    return invalid("InvalidMask", "mask must be an object { kind, data, shape }");
  }
  if (m.kind !== "boolean" && m.kind !== "additive") {
    return invalid("InvalidMask", `mask kind must be "boolean" or "additive", got ${JSON.stringify(m.kind)}`);
  }
  const want = m.kind === "boolean" ? Uint8Array : Float32Array;
  if (!(m.data instanceof want)) {
    return invalid(
      "InvalidMask",
      `a ${m.kind} mask must hold a ${want.name}, got ${
        (m.data as { constructor?: { name?: string } } | undefined)?.constructor?.name ?? String(m.data)
      }`,
    );
  }
  if (!isShape4(m.shape) || !m.shape.every(isPosInt)) {
    return invalid(
      "InvalidMask",
      `mask shape must be 4 positive integers [Bm, Hm, Nq, Nk], got ${JSON.stringify(m.shape)}`,
    );
  }
  const [mb, mh, mq, mk] = m.shape;
  if ((mb !== 1 && mb !== B) || (mh !== 1 && mh !== Hq) || mq !== Nq || mk !== Nk) {
    return invalid(
      "InvalidMask",
      `mask shape ${JSON.stringify(m.shape)} does not broadcast to [${B}, ${Hq}, ${Nq}, ${Nk}]`,
    );
  }
  if (m.data.length !== mb * mh * mq * mk) {
    return invalid(
      "InvalidMask",
      `mask shape ${JSON.stringify(m.shape)} needs ${mb * mh * mq * mk} elements, it holds ${m.data.length}`,
    );
  }
  if (m.kind === "additive") {
    const data = m.data as Float32Array;
    for (let i = 0; i < data.length; i++) {
      const x = data[i];
      if (Number.isNaN(x) || x === Infinity) {
        return invalid("InvalidMask", `additive mask[${i}] is ${x} (only finite values and −inf)`);
      }
      // −inf hides a key; a finite bias must stay where f32 logits can hold it.
      if (x !== -Infinity && Math.abs(x) * LOG2E > LOGIT_LIMIT) {
        return invalid(
          "OutOfRange",
          `additive mask[${i}] = ${x} is out of range (|bias| ≤ ${(LOGIT_LIMIT / LOG2E).toExponential(2)})`,
        );
      }
    }
  }
  return undefined;
}

function overlaps(a: HostData, b: HostData): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * Whether two elements of a tensor can share an offset: zero strides (broadcast), or strides that interleave. Sorted
 * by stride, each dimension must step past everything the smaller ones reach. Conservative: a rare layout that
 * interleaves without colliding is refused too. Fine for inputs, never for an output.
 */
export function selfOverlapping(shape: readonly number[], strides: readonly number[]): boolean {
  const dims = shape.map((n, i) => ({ n, s: Math.abs(strides[i]) })).filter((d) => d.n > 1).sort((a, b) => a.s - b.s);
  let reach = 0; // the largest offset the dimensions taken so far reach from their first element
  for (const d of dims) {
    if (d.s <= reach) return true;
    reach += d.s * (d.n - 1);
  }
  return false;
}

/** Why `out` cannot take this call's output, or undefined when it can. */
function checkOut(out: Tensor, q: Tensor, k: Tensor, v: Tensor, shape: Shape4, dtype: DType): InvalidInput | undefined {
  const bad = checkTensor(out, "out");
  if (bad) return bad;
  if (out.kind !== q.kind) {
    return invalid("InvalidOption", `out is a ${out.kind} tensor but the inputs are ${q.kind} tensors`);
  }
  if (out.kind === "device" && q.kind === "device" && out.backend !== q.backend) {
    return invalid("InvalidOption", `out lives on ${out.backend}, the inputs on ${q.backend}`);
  }
  if (out.layout !== q.layout) return invalid("LayoutMismatch", `out has layout ${out.layout}, the inputs ${q.layout}`);
  if (out.dtype !== dtype) return invalid("DTypeMismatch", `out is ${out.dtype}, the output dtype is ${dtype}`);
  if (out.shape.some((x, i) => x !== shape[i])) {
    return invalid(
      "InvalidShape",
      `out has shape ${JSON.stringify(out.shape)}, the output is ${JSON.stringify(shape)}`,
    );
  }
  if (selfOverlapping(out.shape, out.strides)) {
    return invalid(
      "InvalidShape",
      `out's strides ${JSON.stringify(out.strides)} give two of its elements one address (zero or interleaved ` +
        `strides): each output element needs its own`,
    );
  }
  if (out.kind === "host") {
    for (const [t, name] of [[q, "q"], [k, "k"], [v, "v"]] as const) {
      if (t.kind === "host" && overlaps(out.data, t.data)) {
        return invalid("InvalidOption", `out shares memory with ${name}`);
      }
    }
  }
  return undefined;
}

const BOOLEAN_OPTIONS = ["causal", "returnLse", "smoothK", "validate"] as const;

/** Options must be a plain object of known names, each of the right type (values are checked later). */
function checkOptions(o: unknown): InvalidInput | undefined {
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    return invalid("InvalidOption", `options must be an object, got ${o === null ? "null" : typeof o}`);
  }
  for (const name of Object.keys(o)) {
    if ((OPTION_NAMES as readonly string[]).includes(name)) continue;
    const hint = suggestOption(name);
    return invalid(
      "InvalidOption",
      `unknown option ${JSON.stringify(name)}${hint ? `; did you mean ${JSON.stringify(hint)}?` : ""}`,
    );
  }
  const r = o as Record<string, unknown>;
  for (const name of BOOLEAN_OPTIONS) {
    if (r[name] !== undefined && typeof r[name] !== "boolean") {
      return invalid("InvalidOption", `${name} must be true or false, got ${JSON.stringify(r[name])}`);
    }
  }
  if (r.smScale !== undefined && typeof r.smScale !== "number") {
    return invalid("InvalidOption", `smScale must be a number, got ${typeof r.smScale}`);
  }
  return checkBackendName(r.backend);
}

/** The `backend` option: left out, or a backend's name (an empty one would quietly mean "any"). */
export function checkBackendName(backend: unknown): InvalidInput | undefined {
  if (backend === undefined || (typeof backend === "string" && backend !== "")) return undefined;
  return invalid(
    "InvalidOption",
    `backend must be a backend name ("cuda", "webgpu", "cpu-simd", "js", …) or left out, got ${
      typeof backend === "string" ? '""' : typeof backend
    }`,
  );
}

/**
 * Which path a problem is resolved for: "sage" rounds V to f16 for P·V (its range limits |V|), "exact" computes in
 * float64 (only the output dtype limits |V|).
 */
export type ProblemPurpose = "sage" | "exact";

/**
 * Largest |V| a call may hold so that P·V cannot overflow: O is a convex combination of V rows, but the sage path
 * rounds V to f16 and, with "f16-block", sums up to K_BLOCK products P·V (each P ≤ 1) in f16 within a block. "fp8"
 * and "int8" scale V per channel and could take more, but keep f16's limit: one range contract for every sage mode.
 */
export function valueLimit(purpose: ProblemPurpose, pvAccumulation: PvAccumulation, outputDtype: DType): number {
  if (purpose === "sage") return pvAccumulation === "f16-block" ? F16_MAX / K_BLOCK : F16_MAX;
  return outputDtype === "f16" ? F16_MAX : Infinity;
}

/** Value-range checks on the scanned maxima (finite inputs that would still overflow f32 logits or f16 P·V). */
export function checkRanges(
  p: Problem,
  maxQ: number,
  maxK: number,
  maxV: number,
  purpose: ProblemPurpose,
): InvalidInput | undefined {
  const fold = Math.abs(p.smScale) * LOG2E;
  // Smoothing subtracts K's mean, so |k − mean| ≤ 2·max|k|.
  const logit = fold * maxQ * 2 * maxK * p.D;
  if (fold * maxQ > LOGIT_LIMIT || 2 * maxK > LOGIT_LIMIT || logit > LOGIT_LIMIT) {
    return invalid(
      "OutOfRange",
      `q and k magnitudes (max |q| ${maxQ}, max |k| ${maxK}) with smScale ${p.smScale} give logits up to ${
        logit.toExponential(2)
      }, beyond f32's range (≤ 2^126)`,
    );
  }
  const vLimit = valueLimit(purpose, p.pvAccumulation, p.outputDtype);
  if (maxV > vLimit) {
    return invalid(
      "OutOfRange",
      `v holds |v| = ${maxV}, over ${vLimit} (${
        purpose === "sage"
          ? `P·V ${
            p.pvAccumulation === "fp8" || p.pvAccumulation === "int8" ? "keeps V within f16's range" : "rounds V to f16"
          }${
            p.pvAccumulation === "f16-block"
              ? ` and sums ${K_BLOCK} products in f16; pvAccumulation "f32" allows up to ${F16_MAX}`
              : ""
          }`
          : "the f16 output's range"
      })`,
    );
  }
  return undefined;
}

/**
 * Checks q, k, v and the options against the contract and resolves every default. Every check that costs O(size)
 * (finite and range scans) runs after the shape and size checks, so a huge or broadcast tensor fails fast.
 */
export function resolveProblem(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: AttentionOptions = {},
  purpose: ProblemPurpose = "sage",
): Effect.Effect<Problem, InvalidInput> {
  return Effect.suspend(() => {
    const bad = checkOptions(options) ?? checkTensor(q, "q") ?? checkTensor(k, "k") ?? checkTensor(v, "v");
    if (bad) return Effect.fail(bad);
    if (q.dtype !== k.dtype || q.dtype !== v.dtype) {
      return Effect.fail(invalid("DTypeMismatch", `q, k, v dtypes differ: ${q.dtype}, ${k.dtype}, ${v.dtype}`));
    }
    if (q.layout !== k.layout || q.layout !== v.layout) {
      return Effect.fail(invalid("LayoutMismatch", `q, k, v layouts differ: ${q.layout}, ${k.layout}, ${v.layout}`));
    }
    const dq = dims(q), dk = dims(k), dv = dims(v);
    if (dq.D !== dk.D || dq.D !== dv.D) {
      return Effect.fail(invalid("InvalidShape", `head dims differ: q ${dq.D}, k ${dk.D}, v ${dv.D}`));
    }
    if (dq.D > MAX_HEAD_DIM) return Effect.fail(invalid("InvalidHeadDim", `head dim ${dq.D} is over ${MAX_HEAD_DIM}`));
    if (dq.B !== dk.B || dq.B !== dv.B) {
      return Effect.fail(invalid("InvalidShape", `batch sizes differ: q ${dq.B}, k ${dk.B}, v ${dv.B}`));
    }
    if (dk.H !== dv.H || dk.N !== dv.N) {
      return Effect.fail(invalid("InvalidShape", `k [H=${dk.H}, N=${dk.N}] and v [H=${dv.H}, N=${dv.N}] differ`));
    }
    if (dq.H % dk.H !== 0) {
      return Effect.fail(invalid("InvalidShape", `query heads (${dq.H}) must be a multiple of kv heads (${dk.H})`));
    }
    const o = options;
    const smScale = o.smScale ?? 1 / Math.sqrt(dq.D);
    if (!Number.isFinite(smScale) || smScale === 0) {
      return Effect.fail(invalid("InvalidOption", `smScale must be finite and nonzero, got ${o.smScale}`));
    }
    // The kernels fold smScale·log2e into Q in f32: it must stay a finite, nonzero f32.
    const fold = Math.fround(smScale * LOG2E);
    if (!Number.isFinite(fold) || fold === 0 || Math.abs(fold) > LOGIT_LIMIT) {
      return Effect.fail(
        invalid(
          "OutOfRange",
          `smScale ${smScale} is out of range: smScale·log2(e) must be a finite, nonzero f32 within ±2^126`,
        ),
      );
    }
    if (o.outputDtype !== undefined && o.outputDtype !== "f32" && o.outputDtype !== "f16" && o.outputDtype !== "bf16") {
      return Effect.fail(invalid("InvalidOption", `outputDtype ${String(o.outputDtype)} is not f32, f16 or bf16`));
    }
    if (o.pvAccumulation !== undefined && !PV_ACCUMULATIONS.includes(o.pvAccumulation)) {
      return Effect.fail(invalid("InvalidOption", `pvAccumulation must be "f16-block", "f32", "fp8" or "int8"`));
    }
    if (o.qkGranularity !== undefined && !QK_GRANULARITIES.includes(o.qkGranularity)) {
      return Effect.fail(invalid("InvalidOption", `qkGranularity must be "block", "warp", "row" or "thread"`));
    }
    if (o.varlen) {
      const e = checkVarlen(o.varlen, dq.B, dq.N, dk.N);
      if (e) return Effect.fail(e);
      if (o.mask) return Effect.fail(invalid("InvalidOption", "mask together with varlen is not supported"));
    }
    if (o.mask) {
      const e = checkMask(o.mask, dq.B, dq.H, dq.N, dk.N);
      if (e) return Effect.fail(e);
    }
    const outputDtype = o.outputDtype ?? o.out?.dtype ?? q.dtype;
    if (o.out !== undefined) {
      const e = checkOut(o.out, q, k, v, shapeFor(q.layout, { B: dq.B, H: dq.H, N: dq.N, D: dq.D }), outputDtype);
      if (e) return Effect.fail(e);
    }
    const problem: Problem = {
      B: dq.B,
      Hq: dq.H,
      Hkv: dk.H,
      Nq: dq.N,
      Nk: dk.N,
      D: dq.D,
      group: dq.H / dk.H,
      dtype: q.dtype,
      layout: q.layout,
      outputDtype,
      causal: o.causal ?? false,
      smScale,
      returnLse: o.returnLse ?? false,
      mask: o.mask,
      varlen: o.varlen,
      pvAccumulation: o.pvAccumulation ?? "f16-block",
      pvAuto: o.pvAccumulation === undefined,
      qkGranularity: o.qkGranularity ?? "block",
      smoothK: o.smoothK ?? true,
      out: o.out,
    };
    // validate: false skips the O(size) scans: the caller vouches for the values, and NaN/inf propagate to the output.
    if (o.validate !== false) {
      const maxQ = scanHost(q, "q");
      if (typeof maxQ !== "number") return Effect.fail(maxQ);
      const maxK = scanHost(k, "k");
      if (typeof maxK !== "number") return Effect.fail(maxK);
      const maxV = scanHost(v, "v");
      if (typeof maxV !== "number") return Effect.fail(maxV);
      // V too large for f16 partial sums, with no accumulation asked for: the call sums P·V in f32 instead of failing
      // (same inputs, a slightly different rounding); asked for explicitly, "f16-block" is held to its limit below.
      const widen = purpose === "sage" && o.pvAccumulation === undefined &&
        maxV > valueLimit("sage", "f16-block", outputDtype);
      const resolved: Problem = widen ? { ...problem, pvAccumulation: "f32" } : problem;
      const e = checkRanges(resolved, maxQ, maxK, maxV, purpose);
      if (e) return Effect.fail(e);
      const shift = purpose === "sage" && v.kind === "host" ? vShift(maxV) : 0;
      return Effect.succeed({
        ...resolved,
        validated: q.kind === "host" && k.kind === "host" && v.kind === "host",
        ...(shift ? { vShift: shift } : {}),
      });
    }
    // Unscanned, |v| is unknown here; attention() scans a host V alone once the backend is chosen, if that backend
    // would sum f16 blocks (api.ts, widenUnscanned).
    return Effect.succeed(problem);
  });
}

/** The sequences of a problem as (query start, query count, key start, key count); one per batch entry without varlen. */
export interface Segment {
  readonly b: number;
  readonly q0: number;
  readonly nq: number;
  readonly k0: number;
  readonly nk: number;
}

export function segments(p: Problem): Segment[] {
  if (!p.varlen) return Array.from({ length: p.B }, (_, b) => ({ b, q0: 0, nq: p.Nq, k0: 0, nk: p.Nk }));
  const { cuSeqlensQ: cq, cuSeqlensK: ck } = p.varlen;
  const out: Segment[] = [];
  for (let s = 0; s + 1 < cq.length; s++) {
    out.push({ b: 0, q0: cq[s], nq: cq[s + 1] - cq[s], k0: ck[s], nk: ck[s + 1] - ck[s] });
  }
  return out;
}

/** Last key index + 1 that query i (within its segment) may see under bottom-right causality. */
export function causalLimit(i: number, nq: number, nk: number): number {
  return Math.max(0, Math.min(nk, i + (nk - nq) + 1));
}
