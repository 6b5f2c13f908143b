/**
 * safetensors files (huggingface/safetensors format): an unsigned 64-bit little-endian header length N, N bytes of
 * JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}} (padded with spaces), then
 * the byte buffer the offsets index, little-endian, row-major.
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

const FILE_DTYPES: Record<string, DType> = { F32: "f32", F16: "f16", BF16: "bf16" };
const DTYPE_NAMES: Record<DType, string> = { f32: "F32", f16: "F16", bf16: "BF16" };
/** Bytes per element of every dtype the format defines (so a file with other tensors still opens). */
const DTYPE_WIDTHS: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** A tensor's entry in the header, checked against the file's size. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

/** An open safetensors file: its entries, and the tensors read on demand (a large file is never read whole). */
export interface SafetensorsFile {
  readonly path: string;
  readonly entries: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>>;
  /** Reads one tensor; fails with NoSuchTensor or UnsupportedDType. */
  tensor(name: string): FileTensor;
  close(): void;
}

const isCount = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;

/**
 * The first top-level key of a JSON object text that appears twice (JSON.parse keeps the last silently), or
 * undefined. The text is known to parse.
 */
function duplicateKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1) {
        let n = j + 1;
        while (/\s/.test(text[n])) n++;
        if (text[n] === ":") {
          const key = JSON.parse(text.slice(i, j + 1)) as string;
          if (seen.has(key)) return key;
          seen.add(key);
        }
      }
      i = j;
    }
  }
  return undefined;
}

/** Opens a safetensors file and validates its whole header (offsets in range, sizes matching shapes, no overlaps). */
export function openSafetensors(path: string): SafetensorsFile {
  const file = FileReader.open(path);
  try {
    const bad = (why: string): never => {
      throw new TensorFileError({
        path,
        reason: "BadHeader",
        message: `${path}: not a valid safetensors file: ${why}`,
      });
    };
    const lenBytes = file.read(0, 8, "the 8-byte header length");
    const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
    if (headerLen > MAX_HEADER_BYTES) {
      throw new TensorFileError({
        path,
        reason: "HeaderTooLarge",
        message: `${path}: header of ${headerLen} bytes is over the ${MAX_HEADER_BYTES}-byte limit`,
      });
    }
    const headerBytes = file.read(8, headerLen, "the JSON header");
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
    } catch (e) {
      bad(`its header is not JSON (${(e as Error).message})`);
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) bad("its header is not a JSON object");
    const twice = duplicateKey(new TextDecoder().decode(headerBytes));
    if (twice !== undefined) bad(`tensor name '${twice}' appears twice in its header`);
    const dataStart = 8 + headerLen;
    const dataLen = file.size - dataStart;
    const entries: SafetensorsEntry[] = [];
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
      if (name === "__metadata__") {
        if (typeof raw !== "object" || raw === null || Object.values(raw).some((x) => typeof x !== "string")) {
          bad("__metadata__ must map strings to strings");
        }
        metadata = raw as Record<string, string>;
        continue;
      }
      const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e !== "object" || e === null) bad(`entry '${name}' is not an object`);
      if (typeof e.dtype !== "string" || !Object.hasOwn(DTYPE_WIDTHS, e.dtype)) {
        bad(`entry '${name}' has an unknown dtype ${JSON.stringify(e.dtype)}`);
      }
      if (!Array.isArray(e.shape) || !e.shape.every(isCount)) {
        bad(`entry '${name}' has a bad shape ${JSON.stringify(e.shape)}`);
      }
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !isCount(off[0]) || !isCount(off[1]) || off[0] > off[1]) {
        bad(`entry '${name}' has bad data_offsets ${JSON.stringify(off)}`);
      }
      const [begin, end] = off as [number, number];
      const shape = e.shape as number[];
      const dtype = e.dtype as string;
      const width = DTYPE_WIDTHS[dtype];
      if (end - begin !== elementCount(shape) * width) {
        bad(
          `entry '${name}' (${dtype} ${JSON.stringify(shape)}) needs ${
            elementCount(shape) * width
          } bytes, its offsets span ${end - begin}`,
        );
      }
      if (end > dataLen) {
        throw new TensorFileError({
          path,
          reason: "Truncated",
          message:
            `${path}: truncated: tensor '${name}' ends at data byte ${end}, the file holds ${dataLen} data bytes`,
        });
      }
      entries.push({ name, dtype, shape, begin, end });
    }
    const sorted = [...entries].sort((a, b) => a.begin - b.begin);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].begin < sorted[i - 1].end) bad(`tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`);
    }
    return {
      path,
      entries,
      metadata,
      tensor(name) {
        const entry = entries.find((x) => x.name === name);
        if (!entry) {
          const have = entries.map((x) => x.name).join(", ") || "none";
          throw new TensorFileError({
            path,
            reason: "NoSuchTensor",
            message: `${path}: no tensor named '${name}' (it has: ${have})`,
          });
        }
        const dtype = FILE_DTYPES[entry.dtype];
        if (!dtype) {
          throw new TensorFileError({
            path,
            reason: "UnsupportedDType",
            message: `${path}: tensor '${name}' is ${entry.dtype}: use F32, F16 or BF16`,
          });
        }
        const bytes = file.read(dataStart + entry.begin, entry.end - entry.begin, `tensor '${name}'`);
        return { dtype, shape: entry.shape, data: elementsFromBytes(bytes, dtype) };
      },
      close: () => file.close(),
    };
  } catch (e) {
    file.close();
    throw e;
  }
}

/** Reads the named tensors of a safetensors file. */
export function readSafetensors(path: string, names: readonly string[]): Map<string, FileTensor> {
  const f = openSafetensors(path);
  try {
    return new Map(names.map((n) => [n, f.tensor(n)]));
  } finally {
    f.close();
  }
}

/** The bytes of a safetensors file holding `tensors` in order, the header padded with spaces to 8 bytes. */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, FileTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const size = elementCount(t.shape) * bytesPerElement(t.dtype);
    header[name] = { dtype: DTYPE_NAMES[t.dtype], shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors.values()) {
    const b = bytesOf(t);
    out.set(b, at);
    at += b.length;
  }
  return out;
}

export function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, FileTensor>,
  metadata?: Record<string, string>,
): void {
  writeFileSync(path, encodeSafetensors(tensors, metadata));
}
