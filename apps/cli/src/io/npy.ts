/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0, as numpy.lib.format documents them): the magic "\x93NUMPY",
 * a version, a little-endian header length, then a Python dict literal {'descr', 'fortran_order', 'shape'}
 * padded to a multiple of 64 bytes, then the raw elements.
 */
import { writeFileSync } from "node:fs";
import type { DType } from "@sageattn/core";
import {
  bytesOf,
  bytesPerElement,
  elementCount,
  elementsFromBytes,
  FileReader,
  type FileTensor,
  MAX_HEADER_BYTES,
  TensorFileError,
} from "./tensor-file.js";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** numpy descr → our dtype; a second character of '>' means big-endian. */
const DESCR_DTYPES: Record<string, DType> = { f4: "f32", f2: "f16" };

type PyValue = string | boolean | number[] | undefined;

/** Parses the tiny subset of Python literals a .npy header uses: a dict of str → str | bool | tuple of ints. */
function parseHeaderDict(text: string, fail: (why: string) => never): Map<string, PyValue> {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const expect = (c: string) => {
    ws();
    if (text[i] !== c) fail(`expected '${c}' at header character ${i}, found '${text[i] ?? "end"}'`);
    i++;
  };
  const str = (): string => {
    ws();
    const quote = text[i];
    if (quote !== "'" && quote !== '"') fail(`expected a string at header character ${i}`);
    const end = text.indexOf(quote, i + 1);
    if (end < 0) fail("unterminated string in header");
    const s = text.slice(i + 1, end);
    i = end + 1;
    return s;
  };
  const value = (): PyValue => {
    ws();
    if (text[i] === "'" || text[i] === '"') return str();
    if (text.startsWith("True", i)) return (i += 4), true;
    if (text.startsWith("False", i)) return (i += 5), false;
    if (text[i] === "(") {
      i++;
      const items: number[] = [];
      for (;;) {
        ws();
        if (text[i] === ")") break;
        const m = /^\d+L?/.exec(text.slice(i, i + 24));
        if (!m) fail(`expected a non-negative integer in the shape at header character ${i}`);
        items.push(Number.parseInt(m[0], 10));
        i += m[0].length;
        ws();
        if (text[i] === ",") i++;
        else if (text[i] !== ")") fail(`expected ',' or ')' in the shape at header character ${i}`);
      }
      i++;
      return items;
    }
    return fail(`unexpected value at header character ${i}`);
  };
  const out = new Map<string, PyValue>();
  expect("{");
  for (;;) {
    ws();
    if (text[i] === "}") break;
    const key = str();
    expect(":");
    out.set(key, value());
    ws();
    if (text[i] === ",") i++;
    else if (text[i] !== "}") fail(`expected ',' or '}' at header character ${i}`);
  }
  return out;
}

/** Reorders Fortran-order (column-major) elements into C order. */
function fortranToC<T extends Float32Array | Uint16Array>(src: T, shape: readonly number[]): T {
  const n = shape.length;
  if (n < 2) return src;
  const out = new (src.constructor as new (n: number) => T)(src.length);
  const fStrides = shape.map((_, k) => shape.slice(0, k).reduce((a, b) => a * b, 1));
  const idx = new Array<number>(n).fill(0);
  for (let c = 0; c < src.length; c++) {
    let f = 0;
    for (let k = 0; k < n; k++) f += idx[k] * fStrides[k];
    out[c] = src[f];
    for (let k = n - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** Reads a .npy file holding float32 or float16 (either byte order, C or Fortran order). */
export function readNpy(path: string): FileTensor {
  const file = FileReader.open(path);
  try {
    const fail = (why: string): never => {
      throw new TensorFileError({ path, reason: "BadHeader", message: `${path}: not a valid .npy file: ${why}` });
    };
    const pre = file.read(0, 10, "the .npy preamble");
    if (!MAGIC.every((b, j) => pre[j] === b)) fail("it does not start with \\x93NUMPY");
    const major = pre[6];
    if (major < 1 || major > 3) fail(`unknown format version ${major}.${pre[7]}`);
    let headerLen: number, headerStart: number;
    if (major === 1) {
      headerLen = pre[8] | (pre[9] << 8);
      headerStart = 10;
    } else {
      const more = file.read(8, 4, "the .npy header length");
      headerLen = (more[0] | (more[1] << 8) | (more[2] << 16)) + more[3] * 2 ** 24;
      headerStart = 12;
    }
    if (headerLen > MAX_HEADER_BYTES) {
      throw new TensorFileError({
        path,
        reason: "HeaderTooLarge",
        message: `${path}: header of ${headerLen} bytes is over the ${MAX_HEADER_BYTES}-byte limit`,
      });
    }
    const headerBytes = file.read(headerStart, headerLen, "the .npy header");
    const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(headerBytes);
    const dict = parseHeaderDict(header, fail);
    const descrValue = dict.get("descr");
    const fortran = dict.get("fortran_order");
    const shapeValue = dict.get("shape");
    if (typeof descrValue !== "string") return fail("'descr' is missing or not a string");
    if (typeof fortran !== "boolean") return fail("'fortran_order' is missing or not True/False");
    if (!Array.isArray(shapeValue)) return fail("'shape' is missing or not a tuple");
    const descr: string = descrValue;
    const shape: number[] = shapeValue;
    const order = descr[0];
    const dtype = Object.hasOwn(DESCR_DTYPES, descr.slice(1)) ? DESCR_DTYPES[descr.slice(1)] : undefined;
    if (!dtype || (order !== "<" && order !== ">" && order !== "=")) {
      const hint = descr === "<V2" || descr === "|V2"
        ? " (bfloat16 loses its type in .npy: use .safetensors for bf16)"
        : descr.endsWith("f8")
        ? " (save float64 as float32: a.astype(np.float32))"
        : "";
      throw new TensorFileError({
        path,
        reason: "UnsupportedDType",
        message: `${path}: dtype '${descr}' is not supported: use float32 ('<f4') or float16 ('<f2')${hint}`,
      });
    }
    const count = elementCount(shape);
    const dataStart = headerStart + headerLen;
    const byteLength = count * bytesPerElement(dtype);
    const body = file.read(dataStart, byteLength, `${shape.join("×")} ${dtype} elements`);
    let data = elementsFromBytes(body, dtype, order === ">");
    if (fortran) data = fortranToC(data, shape);
    return { dtype, shape: shape, data };
  } finally {
    file.close();
  }
}

/** The bytes of a .npy file (version 1.0, or 2.0 when the header needs it) holding `t` in C order. */
export function encodeNpy(t: FileTensor): Uint8Array {
  if (t.dtype === "bf16") throw new RangeError("bf16 has no .npy dtype; convert to f32 first");
  const descr = t.dtype === "f32" ? "<f4" : "<f2";
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(", ")})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const v1 = dict.length + 1 + 10 <= 0xffff + 10;
  const pre = v1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const header = dict.padEnd(total - pre - 1, " ") + "\n";
  const body = bytesOf(t);
  const out = new Uint8Array(total + body.length);
  out.set(MAGIC, 0);
  out[6] = v1 ? 1 : 2;
  out[7] = 0;
  const len = header.length;
  if (v1) {
    out[8] = len & 0xff;
    out[9] = len >>> 8;
  } else new DataView(out.buffer).setUint32(8, len, true);
  for (let j = 0; j < header.length; j++) out[pre + j] = header.charCodeAt(j);
  out.set(body, total);
  return out;
}

export function writeNpy(path: string, t: FileTensor): void {
  writeFileSync(path, encodeNpy(t));
}
