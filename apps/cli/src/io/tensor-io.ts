import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { encodeNpy, readNpy } from "./npy.js";
import { encodeSafetensors, openSafetensors } from "./safetensors.js";
import { writeFilesAtomically } from "./safe-write.js";
import { type FileTensor, formatOf, TensorFileError } from "./tensor-file.js";

/**
 * Reads one tensor from a .npy file, or from a .safetensors file by name. A safetensors file holding a single
 * tensor yields it whatever its name, so `--q q.safetensors` works for files saved with any name.
 */
export function readTensor(path: string, name: string): FileTensor {
  const format = formatOf(path);
  if (format === "npy") return readNpy(path);
  if (format === "safetensors") {
    const f = openSafetensors(path);
    try {
      const only = f.entries.length === 1 ? f.entries[0].name : undefined;
      return f.tensor(f.entries.some((e) => e.name === name) ? name : (only ?? name));
    } finally {
      f.close();
    }
  }
  throw new TensorFileError({
    path,
    reason: "UnknownFormat",
    message: `${path}: unknown format: name it .npy or .safetensors`,
  });
}

/**
 * Writes named tensors to files: every tensor bound for the same .safetensors path goes into one file;
 * a .npy path takes exactly one tensor (bf16 is widened to f32 there, since .npy has no bf16).
 * Every file is written in full before any replaces its target (see writeFilesAtomically): all or nothing.
 * Returns, per tensor name, the dtype actually written.
 */
export function writeTensors(
  targets: ReadonlyArray<{ path: string; name: string; tensor: FileTensor }>,
): Map<string, FileTensor["dtype"]> {
  const written = new Map<string, FileTensor["dtype"]>();
  const bundles = new Map<string, Map<string, FileTensor>>();
  const files: { path: string; bytes: Uint8Array }[] = [];
  for (const t of targets) {
    const format = formatOf(t.path);
    if (format === "npy") {
      const tensor = t.tensor.dtype === "bf16" ? widenBf16(t.tensor) : t.tensor;
      files.push({ path: t.path, bytes: encodeNpy(tensor) });
      written.set(t.name, tensor.dtype);
    } else if (format === "safetensors") {
      const bundle = bundles.get(t.path) ?? new Map<string, FileTensor>();
      bundle.set(t.name, t.tensor);
      bundles.set(t.path, bundle);
      written.set(t.name, t.tensor.dtype);
    } else {throw new TensorFileError({
        path: t.path,
        reason: "UnknownFormat",
        message: `${t.path}: unknown format: name it .npy or .safetensors`,
      });}
  }
  for (const [path, bundle] of bundles) {
    files.push({ path, bytes: encodeSafetensors(bundle, { producer: "sageattn" }) });
  }
  writeFilesAtomically(files);
  return written;
}

function widenBf16(t: FileTensor): FileTensor {
  const bits = t.data as Uint16Array;
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
  return { dtype: "f32", shape: t.shape, data: new Float32Array(out.buffer) };
}

/** Fails before any work is done when a file could not be written for want of its folder. */
export function checkWritable(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new TensorFileError({ path, reason: "NotFound", message: `${path}: cannot write there: no folder ${dir}` });
  }
}
