import { Effect } from "effect";
import type { DType } from "./dtype.js";
import { invalid, type InvalidInput } from "./errors.js";
import { dims, requiredLength, shapeFor, type HostData, type Layout, type Shape4, type Tensor } from "./tensor.js";

/** Largest head dimension any backend accepts. */
export const MAX_HEAD_DIM = 256;

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
  /** "f16-block": P·V summed in f16 within a K block then in f32 (the paper); "f32": f32 throughout. */
  readonly pvAccumulation?: "f16-block" | "f32";
  /** Subtract the mean of K over tokens before quantizing (on by default; off only to show why it matters). */
  readonly smoothK?: boolean;
  /** Reject NaN/±inf in host inputs (on by default). */
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
  readonly pvAccumulation: "f16-block" | "f32";
  readonly smoothK: boolean;
  /** The caller's output tensor (validated against the call), or undefined to allocate one. */
  readonly out: Tensor | undefined;
}

const isPosInt = (x: number) => Number.isInteger(x) && x > 0;

/** Calls `visit` with the storage index of every element the shape and strides address. */
function forEachIndex(t: Tensor, visit: (i: number) => boolean): void {
  const [n0, n1, n2, n3] = t.shape;
  const [s0, s1, s2, s3] = t.strides;
  for (let a = 0; a < n0; a++)
    for (let b = 0; b < n1; b++)
      for (let c = 0; c < n2; c++) {
        const base = a * s0 + b * s1 + c * s2;
        for (let d = 0; d < n3; d++) if (!visit(base + d * s3)) return;
      }
}

function checkFinite(t: Tensor, name: string): InvalidInput | undefined {
  if (t.kind !== "host") return undefined;
  const data = t.data;
  // f32: a NaN or ±inf value; f16: exponent bits 0x7c00 all set; bf16: 0x7f80 all set.
  const m = t.dtype === "bf16" ? 0x7f80 : 0x7c00;
  const isBad = data instanceof Float32Array ? (i: number) => !Number.isFinite(data[i]) : (i: number) => (data[i] & m) === m;
  let bad = -1;
  forEachIndex(t, (i) => {
    if (!isBad(i)) return true;
    bad = i;
    return false;
  });
  if (bad < 0) return undefined;
  const shown = data instanceof Float32Array ? String(data[bad]) : `bits 0x${data[bad].toString(16)}`;
  return invalid("NonFinite", `${name}[${bad}] is not finite (${shown})`);
}

function checkTensor(t: Tensor, name: string): InvalidInput | undefined {
  if (!t || (t.kind !== "host" && t.kind !== "device")) return invalid("InvalidShape", `${name} is not a tensor`);
  if (t.layout !== "HND" && t.layout !== "NHD") return invalid("LayoutMismatch", `${name} has unknown layout ${String(t.layout)}`);
  if (!Array.isArray(t.shape) || t.shape.length !== 4) return invalid("InvalidShape", `${name} must have 4 dimensions, got ${JSON.stringify(t.shape)}`);
  if (t.shape[3] === 0) return invalid("InvalidHeadDim", `${name} has head dim 0`);
  if (t.shape.some((x) => x === 0)) return invalid("EmptyTensor", `${name} is empty: shape ${JSON.stringify(t.shape)}`);
  if (!t.shape.every(isPosInt)) return invalid("InvalidShape", `${name} has a bad shape ${JSON.stringify(t.shape)}`);
  if (!Array.isArray(t.strides) || t.strides.length !== 4 || !t.strides.every((s) => Number.isInteger(s) && s >= 0))
    return invalid("InvalidShape", `${name} has bad strides ${JSON.stringify(t.strides)}`);
  if (t.kind === "host") {
    const want = t.dtype === "f32" ? Float32Array : Uint16Array;
    if (!(t.data instanceof want)) return invalid("DTypeMismatch", `${name} says ${t.dtype} but holds a ${t.data?.constructor?.name}`);
    const need = requiredLength(t);
    if (t.data.length < need) return invalid("InvalidShape", `${name} needs ${need} elements for its shape and strides, has ${t.data.length}`);
  }
  return undefined;
}

function checkVarlen(v: Varlen, B: number, Nq: number, Nk: number): InvalidInput | undefined {
  const { cuSeqlensQ: cq, cuSeqlensK: ck } = v;
  if (!(cq instanceof Int32Array) || !(ck instanceof Int32Array)) return invalid("InvalidVarlen", "cuSeqlensQ and cuSeqlensK must be Int32Arrays");
  if (B !== 1) return invalid("InvalidVarlen", `varlen packs sequences along N: B must be 1, got ${B}`);
  if (cq.length < 2 || cq.length !== ck.length) return invalid("InvalidVarlen", "cuSeqlensQ and cuSeqlensK need the same length ≥ 2");
  if (cq[0] !== 0 || ck[0] !== 0) return invalid("InvalidVarlen", "cumulative sequence lengths start at 0");
  for (let s = 1; s < cq.length; s++)
    if (cq[s] < cq[s - 1] || ck[s] < ck[s - 1]) return invalid("InvalidVarlen", `cumulative sequence lengths must not decrease (at ${s})`);
  if (cq[cq.length - 1] !== Nq || ck[ck.length - 1] !== Nk)
    return invalid("InvalidVarlen", `cumulative lengths end at ${cq[cq.length - 1]}/${ck[ck.length - 1]}, tensors hold ${Nq}/${Nk} tokens`);
  return undefined;
}

function checkMask(m: AttentionMask, B: number, Hq: number, Nq: number, Nk: number): InvalidInput | undefined {
  if (m.kind !== "boolean" && m.kind !== "additive") return invalid("InvalidMask", `mask kind must be "boolean" or "additive"`);
  const want = m.kind === "boolean" ? Uint8Array : Float32Array;
  if (!(m.data instanceof want)) return invalid("InvalidMask", `a ${m.kind} mask holds a ${want.name}`);
  const [mb, mh, mq, mk] = m.shape;
  if ((mb !== 1 && mb !== B) || (mh !== 1 && mh !== Hq) || mq !== Nq || mk !== Nk)
    return invalid("InvalidMask", `mask shape ${JSON.stringify(m.shape)} does not broadcast to [${B}, ${Hq}, ${Nq}, ${Nk}]`);
  if (m.data.length !== mb * mh * mq * mk) return invalid("InvalidMask", `mask holds ${m.data.length} elements, shape needs ${mb * mh * mq * mk}`);
  if (m.kind === "additive") for (const x of m.data as Float32Array) if (Number.isNaN(x) || x === Infinity) return invalid("InvalidMask", "additive mask holds NaN or +inf");
  return undefined;
}

function overlaps(a: HostData, b: HostData): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/** Why `out` cannot take this call's output, or undefined when it can. */
function checkOut(out: Tensor, q: Tensor, k: Tensor, v: Tensor, shape: Shape4, dtype: DType): InvalidInput | undefined {
  const bad = checkTensor(out, "out");
  if (bad) return bad;
  if (out.kind !== q.kind) return invalid("InvalidOption", `out is a ${out.kind} tensor but the inputs are ${q.kind} tensors`);
  if (out.kind === "device" && q.kind === "device" && out.backend !== q.backend)
    return invalid("InvalidOption", `out lives on ${out.backend}, the inputs on ${q.backend}`);
  if (out.layout !== q.layout) return invalid("LayoutMismatch", `out has layout ${out.layout}, the inputs ${q.layout}`);
  if (out.dtype !== dtype) return invalid("DTypeMismatch", `out is ${out.dtype}, the output dtype is ${dtype}`);
  if (out.shape.some((x, i) => x !== shape[i])) return invalid("InvalidShape", `out has shape ${JSON.stringify(out.shape)}, the output is ${JSON.stringify(shape)}`);
  if (out.kind === "host")
    for (const [t, name] of [[q, "q"], [k, "k"], [v, "v"]] as const)
      if (t.kind === "host" && overlaps(out.data, t.data)) return invalid("InvalidOption", `out shares memory with ${name}`);
  return undefined;
}

/** Checks q, k, v and the options against the contract and resolves every default. */
export function resolveProblem(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Effect.Effect<Problem, InvalidInput> {
  return Effect.suspend(() => {
    const bad =
      checkTensor(q, "q") ?? checkTensor(k, "k") ?? checkTensor(v, "v");
    if (bad) return Effect.fail(bad);
    if (q.dtype !== k.dtype || q.dtype !== v.dtype) return Effect.fail(invalid("DTypeMismatch", `q, k, v dtypes differ: ${q.dtype}, ${k.dtype}, ${v.dtype}`));
    if (q.layout !== k.layout || q.layout !== v.layout) return Effect.fail(invalid("LayoutMismatch", `q, k, v layouts differ: ${q.layout}, ${k.layout}, ${v.layout}`));
    const dq = dims(q), dk = dims(k), dv = dims(v);
    if (dq.D !== dk.D || dq.D !== dv.D) return Effect.fail(invalid("InvalidShape", `head dims differ: q ${dq.D}, k ${dk.D}, v ${dv.D}`));
    if (dq.D > MAX_HEAD_DIM) return Effect.fail(invalid("InvalidHeadDim", `head dim ${dq.D} is over ${MAX_HEAD_DIM}`));
    if (dq.B !== dk.B || dq.B !== dv.B) return Effect.fail(invalid("InvalidShape", `batch sizes differ: q ${dq.B}, k ${dk.B}, v ${dv.B}`));
    if (dk.H !== dv.H || dk.N !== dv.N) return Effect.fail(invalid("InvalidShape", `k [H=${dk.H}, N=${dk.N}] and v [H=${dv.H}, N=${dv.N}] differ`));
    if (dq.H % dk.H !== 0) return Effect.fail(invalid("InvalidShape", `query heads (${dq.H}) must be a multiple of kv heads (${dk.H})`));
    const o = options;
    const smScale = o.smScale ?? 1 / Math.sqrt(dq.D);
    if (!Number.isFinite(smScale) || smScale === 0) return Effect.fail(invalid("InvalidOption", `smScale must be finite and nonzero, got ${o.smScale}`));
    if (o.outputDtype !== undefined && o.outputDtype !== "f32" && o.outputDtype !== "f16" && o.outputDtype !== "bf16")
      return Effect.fail(invalid("InvalidOption", `outputDtype ${String(o.outputDtype)} is not f32, f16 or bf16`));
    if (o.pvAccumulation !== undefined && o.pvAccumulation !== "f16-block" && o.pvAccumulation !== "f32")
      return Effect.fail(invalid("InvalidOption", `pvAccumulation must be "f16-block" or "f32"`));
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
    if (o.validate !== false) {
      const e = checkFinite(q, "q") ?? checkFinite(k, "k") ?? checkFinite(v, "v");
      if (e) return Effect.fail(e);
    }
    return Effect.succeed<Problem>({
      B: dq.B, Hq: dq.H, Hkv: dk.H, Nq: dq.N, Nk: dk.N, D: dq.D, group: dq.H / dk.H,
      dtype: q.dtype, layout: q.layout, outputDtype,
      causal: o.causal ?? false, smScale, returnLse: o.returnLse ?? false,
      mask: o.mask, varlen: o.varlen, pvAccumulation: o.pvAccumulation ?? "f16-block", smoothK: o.smoothK ?? true,
      out: o.out,
    });
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
  for (let s = 0; s + 1 < cq.length; s++) out.push({ b: 0, q0: cq[s], nq: cq[s + 1] - cq[s], k0: ck[s], nk: ck[s + 1] - ck[s] });
  return out;
}

/** Last key index + 1 that query i (within its segment) may see under bottom-right causality. */
export function causalLimit(i: number, nq: number, nk: number): number {
  return Math.max(0, Math.min(nk, i + (nk - nq) + 1));
}
