import type { Capabilities } from "../backend.js";
import type { AttentionOptions } from "../problem.js";
import { type HostTensor, hostTensor, type Shape4 } from "../tensor.js";

/** A call that must fail, and the tagged error it must fail with. */
export interface ErrorCase {
  readonly name: string;
  readonly tag: "InvalidInput" | "BackendUnavailable";
  readonly reason: string;
  readonly make: () => { q: HostTensor; k: HostTensor; v: HostTensor; options: AttentionOptions };
}

const f32 = (shape: Shape4, fill = 0.5) =>
  hostTensor(new Float32Array(shape[0] * shape[1] * shape[2] * shape[3]).fill(fill), shape);
const f16 = (shape: Shape4) =>
  hostTensor(new Uint16Array(shape[0] * shape[1] * shape[2] * shape[3]).fill(0x3800), shape, { dtype: "f16" });
const qkv = (q: Shape4, kv: Shape4, options: AttentionOptions = {}) => ({ q: f32(q), k: f32(kv), v: f32(kv), options });

export function errorCases(caps: Capabilities): ErrorCase[] {
  const cases: ErrorCase[] = [
    {
      name: "k and v of different lengths",
      tag: "InvalidInput",
      reason: "InvalidShape",
      make: () => ({ ...qkv([1, 2, 8, 16], [1, 2, 8, 16]), v: f32([1, 2, 9, 16]) }),
    },
    {
      name: "mismatched batch",
      tag: "InvalidInput",
      reason: "InvalidShape",
      make: () => qkv([2, 2, 8, 16], [1, 2, 8, 16]),
    },
    {
      name: "Hq not a multiple of Hkv",
      tag: "InvalidInput",
      reason: "InvalidShape",
      make: () => qkv([1, 3, 8, 16], [1, 2, 8, 16]),
    },
    { name: "head dim 0", tag: "InvalidInput", reason: "InvalidHeadDim", make: () => qkv([1, 2, 8, 0], [1, 2, 8, 0]) },
    {
      name: "head dim 257",
      tag: "InvalidInput",
      reason: "InvalidHeadDim",
      make: () => qkv([1, 1, 2, 257], [1, 1, 2, 257]),
    },
    {
      name: "an empty sequence",
      tag: "InvalidInput",
      reason: "EmptyTensor",
      make: () => qkv([1, 2, 0, 16], [1, 2, 8, 16]),
    },
    {
      name: "mixed dtypes",
      tag: "InvalidInput",
      reason: "DTypeMismatch",
      make: () => ({ ...qkv([1, 2, 8, 16], [1, 2, 8, 16]), q: f16([1, 2, 8, 16]) }),
    },
    {
      name: "mixed layouts",
      tag: "InvalidInput",
      reason: "LayoutMismatch",
      make: () => ({
        ...qkv([1, 2, 8, 16], [1, 2, 8, 16]),
        q: hostTensor(new Float32Array(256), [1, 8, 2, 16], { layout: "NHD" }),
      }),
    },
    {
      name: "data shorter than its shape",
      tag: "InvalidInput",
      reason: "InvalidShape",
      make: () => ({ ...qkv([1, 2, 8, 16], [1, 2, 8, 16]), q: hostTensor(new Float32Array(100), [1, 2, 8, 16]) }),
    },
    {
      name: "a NaN in q",
      tag: "InvalidInput",
      reason: "NonFinite",
      make: () => {
        const c = qkv([1, 2, 8, 16], [1, 2, 8, 16]);
        (c.q.data as Float32Array)[37] = Number.NaN;
        return c;
      },
    },
    {
      name: "an infinite f16 in k",
      tag: "InvalidInput",
      reason: "NonFinite",
      make: () => {
        const k = f16([1, 2, 8, 16]);
        (k.data as Uint16Array)[5] = 0x7c00;
        return { q: f16([1, 2, 8, 16]), k, v: f16([1, 2, 8, 16]), options: {} };
      },
    },
    {
      name: "smScale NaN",
      tag: "InvalidInput",
      reason: "InvalidOption",
      make: () => qkv([1, 2, 8, 16], [1, 2, 8, 16], { smScale: Number.NaN }),
    },
    {
      name: "smScale 1e38 (its f32 fold overflows)",
      tag: "InvalidInput",
      reason: "OutOfRange",
      make: () => qkv([1, 2, 8, 16], [1, 2, 8, 16], { smScale: 1e38 }),
    },
    {
      name: "a misspelled option",
      tag: "InvalidInput",
      reason: "InvalidOption",
      make: () => qkv([1, 2, 8, 16], [1, 2, 8, 16], { casual: true } as AttentionOptions),
    },
    {
      name: "an unknown dtype string",
      tag: "InvalidInput",
      reason: "DTypeMismatch",
      make: () => ({ ...qkv([1, 2, 8, 16], [1, 2, 8, 16]), q: { ...f16([1, 2, 8, 16]), dtype: "f64" as never } }),
    },
    {
      name: "v beyond the f16 range of P·V",
      tag: "InvalidInput",
      reason: "OutOfRange",
      make: () => ({ ...qkv([1, 2, 8, 16], [1, 2, 8, 16]), v: f32([1, 2, 8, 16], 3e38) }),
    },
    {
      name: "varlen lengths that do not add up",
      tag: "InvalidInput",
      reason: "InvalidVarlen",
      make: () =>
        qkv([1, 2, 8, 16], [1, 2, 8, 16], {
          varlen: { cuSeqlensQ: Int32Array.from([0, 4, 7]), cuSeqlensK: Int32Array.from([0, 4, 8]) },
        }),
    },
  ];
  if (!caps.mask) {
    cases.push({
      name: "a mask it does not support",
      tag: "BackendUnavailable",
      reason: "Unsupported",
      make: () =>
        qkv([1, 1, 4, 16], [1, 1, 4, 16], {
          mask: { kind: "boolean", data: new Uint8Array(16).fill(1), shape: [1, 1, 4, 4] },
        }),
    });
  }
  return cases;
}
