import { Data } from "effect";
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from "node:fs";
import type { DType } from "@sageattn/core";

/** What was wrong with a tensor file. */
export type TensorFileReason =
  | "NotFound" // missing or unreadable
  | "Truncated" // shorter than its header says
  | "BadHeader" // magic, JSON or dict literal malformed
  | "HeaderTooLarge" // header over MAX_HEADER_BYTES
  | "UnsupportedDType" // not f32, f16 or bf16
  | "NoSuchTensor" // a safetensors file lacks the named tensor
  | "BadShape" // the array's rank or sizes do not fit what the command needs
  | "UnknownFormat" // neither .npy nor .safetensors
  | "NotRegularFile" // a FIFO, device or socket: reading it could block or never end
  | "OutputIsInput" // an output path names one of the inputs
  | "OutputExists" // an output exists and --force was not given
  | "WriteFailed"; // writing an output failed; no output was changed

/** A tensor file could not be read or written; `path` names it, `message` says what a person should fix. */
export class TensorFileError extends Data.TaggedError("TensorFileError")<{
  readonly path: string;
  readonly reason: TensorFileReason;
  readonly message: string;
}> {}

/** One array read from (or to be written to) a file: row-major (C order), little-endian in memory. */
export interface FileTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** f32 values, or f16/bf16 bit patterns. */
  readonly data: Float32Array | Uint16Array;
}

/** Headers larger than this are refused before anything is allocated (safetensors' own limit). */
export const MAX_HEADER_BYTES = 100_000_000;

export type TensorFormat = "npy" | "safetensors";

/** The format a path's extension names. */
export function formatOf(path: string): TensorFormat | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith(".npy")) return "npy";
  if (lower.endsWith(".safetensors")) return "safetensors";
  return undefined;
}

export const bytesPerElement = (dtype: DType) => (dtype === "f32" ? 4 : 2);

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Random access to a file through one descriptor; every read checks it got all it asked for. */
export class FileReader {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly size: number,
  ) {}

  static open(path: string): FileReader {
    let fd: number;
    try {
      // A FIFO blocks in open() until a writer comes: refuse anything but a regular file before opening, and open
      // without blocking in case the path changes in between.
      const s = statSync(path);
      if (!s.isFile() && !s.isDirectory()) {
        throw new TensorFileError({
          path,
          reason: "NotRegularFile",
          message: `${path}: not a regular file (a FIFO, device or socket); give a .npy or .safetensors file`,
        });
      }
      fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    } catch (e) {
      if (e instanceof TensorFileError) throw e;
      const code = (e as { code?: string }).code;
      const why = code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
        ? "is a directory"
        : code === "EACCES"
        ? "permission denied"
        : String((e as Error).message ?? e);
      throw new TensorFileError({ path, reason: "NotFound", message: `${path}: ${why}` });
    }
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      closeSync(fd);
      throw new TensorFileError({ path, reason: "NotRegularFile", message: `${path}: not a regular file` });
    }
    return new FileReader(path, fd, stat.size);
  }

  /** `length` bytes at `position`, or a Truncated error saying what `what` needed. */
  read(position: number, length: number, what: string): Uint8Array {
    if (position + length > this.size) {
      throw new TensorFileError({
        path: this.path,
        reason: "Truncated",
        message: `${this.path}: truncated: ${what} needs bytes ${position}..${
          position + length
        }, the file has ${this.size}`,
      });
    }
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, position + done);
      if (n <= 0) {
        throw new TensorFileError({
          path: this.path,
          reason: "Truncated",
          message: `${this.path}: read stopped at byte ${position + done}`,
        });
      }
      done += n;
    }
    return out;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Typed elements from little-endian bytes: a view when the bytes start at an aligned offset of their own buffer
 * (what FileReader.read returns), else a copy; big-endian input is byte-swapped into a copy.
 */
export function elementsFromBytes(bytes: Uint8Array, dtype: DType, bigEndian = false): Float32Array | Uint16Array {
  const width = bytesPerElement(dtype);
  let src = bytes;
  if (bigEndian) {
    src = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i += width) for (let b = 0; b < width; b++) src[i + b] = bytes[i + width - 1 - b];
  } else if (bytes.byteOffset % width !== 0) src = bytes.slice();
  const n = src.length / width;
  return dtype === "f32"
    ? new Float32Array(src.buffer, src.byteOffset, n)
    : new Uint16Array(src.buffer, src.byteOffset, n);
}

/** The little-endian bytes of a tensor's elements. */
export function bytesOf(t: FileTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}
