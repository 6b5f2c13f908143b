import {
  closeSync,
  fsyncSync,
  lstatSync,
  openSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { TensorFileError } from "./tensor-file.js";

const statOf = (path: string, follow = true): Stats | undefined => {
  try {
    return follow ? statSync(path) : lstatSync(path); // following symlinks, a link to an input is that input
  } catch {
    return undefined;
  }
};

/**
 * Checks the output paths before any work: an output that is one of the inputs (same file, through a symlink or a
 * hard link too) is always refused; an existing output is refused unless `force` (then replaced atomically).
 */
export function checkOutputs(outputs: readonly string[], inputs: readonly string[], force: boolean): void {
  const ins = inputs.map((p) => ({ path: p, stat: statOf(p) }));
  for (const out of new Set(outputs)) {
    const dir = dirname(out);
    const d = statOf(dir);
    if (!d?.isDirectory()) {
      throw new TensorFileError({
        path: out,
        reason: "NotFound",
        message: `${out}: cannot write there: no folder ${dir}`,
      });
    }
    const s = statOf(out);
    if (!s) {
      // Nothing there, or a symbolic link to nothing: the link is the user's, so it needs --force like a file.
      if (statOf(out, false) && !force) {
        throw new TensorFileError({
          path: out,
          reason: "OutputExists",
          message: `${out}: exists (a symbolic link to a missing file); pass --force to replace it`,
        });
      }
      continue;
    }
    const same = ins.find((i) => i.stat && i.stat.dev === s.dev && i.stat.ino === s.ino);
    if (same) {
      throw new TensorFileError({
        path: out,
        reason: "OutputIsInput",
        message: `${out}: is the input ${same.path}; refusing to overwrite an input (name another output file)`,
      });
    }
    if (!s.isFile()) {
      throw new TensorFileError({
        path: out,
        reason: "OutputExists",
        message: `${out}: exists and is not a regular file`,
      });
    }
    if (!force) {
      throw new TensorFileError({
        path: out,
        reason: "OutputExists",
        message: `${out}: exists; pass --force to replace it`,
      });
    }
  }
}

let serial = 0;

/** Writes all of `bytes` to a new file at `path` and flushes it to disk; throws what the system said. */
function writeNew(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, "wx", 0o644);
  try {
    for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes every file or none: each goes to a temporary file in its own folder first (so that a rename cannot cross a
 * file system), and only once all are complete are they renamed over their targets. A failure (disk full, a file
 * size limit) removes the temporaries and leaves every target as it was.
 */
export function writeFilesAtomically(files: ReadonlyArray<{ path: string; bytes: Uint8Array }>): void {
  const temps: string[] = [];
  try {
    for (const f of files) {
      const temp = join(dirname(f.path), `.${basename(f.path)}.${process.pid}.${serial++}.tmp`);
      temps.push(temp);
      writeNew(temp, f.bytes);
    }
  } catch (e) {
    for (const t of temps) {
      try {
        unlinkSync(t);
      } catch {
        // never created
      }
    }
    const failed = files[temps.length - 1]?.path ?? files[0]?.path ?? "";
    const code = (e as { code?: string }).code;
    const why = code === "ENOSPC"
      ? "no space left on the device"
      : code === "EFBIG"
      ? "over the file size limit"
      : code === "EACCES"
      ? "permission denied"
      : String((e as Error).message ?? e);
    throw new TensorFileError({
      path: failed,
      reason: "WriteFailed",
      message: `${failed}: could not be written (${why}); no output was changed`,
    });
  }
  files.forEach((f, i) => renameSync(temps[i], f.path));
}
