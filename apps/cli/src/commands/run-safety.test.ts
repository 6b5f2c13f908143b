// Issue #12 cases 2 and 10: `sageattn run` never modifies an input, never replaces an output silently, leaves the
// previous outputs untouched when a write fails, writes --out/--lse all or nothing, and refuses a FIFO input.
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fixture } from "../io/fixture-paths.js";
import { writeFilesAtomically } from "../io/safe-write.js";
import { openSafetensors } from "../io/safetensors.js";
import { runCommand } from "./run.js";

let stderr = "";
beforeEach(() => {
  stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation(() => true);
  vi.spyOn(process.stderr, "write").mockImplementation((s) => ((stderr += String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

const tmp = () => mkdtempSync(join(tmpdir(), "sageattn-safety-"));
/** Copies of the a_* fixtures in a fresh folder (tests may try to overwrite them). */
function inputs(): { dir: string; q: string; k: string; v: string } {
  const dir = tmp();
  const [q, k, v] = ["q", "k", "v"].map((n) => join(dir, `${n}.npy`));
  copyFileSync(fixture("a_q.npy"), q);
  copyFileSync(fixture("a_k.npy"), k);
  copyFileSync(fixture("a_v.npy"), v);
  return { dir, q, k, v };
}
const run = (x: { q: string; k: string; v: string }, ...more: string[]) =>
  runCommand(["--q", x.q, "--k", x.k, "--v", x.v, "--backend", "js", ...more]);

describe("outputs never touch inputs", () => {
  it("--out naming an input is refused and the input keeps its bytes (even with --force)", async () => {
    const x = inputs();
    const before = readFileSync(x.q);
    expect(await run(x, "--out", x.q, "--force")).toBe(1);
    expect(stderr).toMatch(/is the input/);
    expect(readFileSync(x.q).equals(before)).toBe(true);
  });
  it("through a symlink or a hard link too", async () => {
    const x = inputs();
    const before = readFileSync(x.k);
    const link = join(x.dir, "link.npy"), hard = join(x.dir, "hard.npy");
    symlinkSync(x.k, link);
    linkSync(x.k, hard);
    for (const out of [link, hard]) {
      expect(await run(x, "--out", out, "--force")).toBe(1);
      expect(readFileSync(x.k).equals(before)).toBe(true);
    }
    expect(await run(x, "--out", join(x.dir, "o.npy"), "--lse", link, "--force")).toBe(1);
    expect(existsSync(join(x.dir, "o.npy")), "nothing written when any output is refused").toBe(false);
  });
  it("--in x.safetensors --out x.safetensors is refused", async () => {
    const dir = tmp();
    const file = join(dir, "x.safetensors");
    copyFileSync(fixture("c_qkv_bf16.safetensors"), file);
    const before = readFileSync(file);
    expect(await runCommand(["--in", file, "--backend", "js", "--out", file, "--force"])).toBe(1);
    expect(readFileSync(file).equals(before)).toBe(true);
  });
});

describe("existing outputs", () => {
  it("are not replaced without --force, and are with it", async () => {
    const x = inputs();
    const out = join(x.dir, "o.npy");
    writeFileSync(out, "previous");
    expect(await run(x, "--out", out)).toBe(1);
    expect(stderr).toMatch(/exists; pass --force/);
    expect(readFileSync(out, "utf8")).toBe("previous");
    expect(await run(x, "--out", out, "--force")).toBe(0);
    expect(readFileSync(out).subarray(0, 6).toString("latin1")).toBe("\x93NUMPY");
    expect(readdirSync(x.dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("a symbolic link to a missing file counts as existing: kept without --force, replaced with it", async () => {
    const x = inputs();
    const out = join(x.dir, "o.npy");
    symlinkSync(join(x.dir, "missing.npy"), out);
    expect(await run(x, "--out", out)).toBe(1);
    expect(stderr).toMatch(/a symbolic link to a missing file\); pass --force/);
    expect(readlinkSync(out)).toBe(join(x.dir, "missing.npy"));
    expect(await run(x, "--out", out, "--force")).toBe(0);
    expect(readFileSync(out).subarray(0, 6).toString("latin1")).toBe("\x93NUMPY");
  });
});

describe("failed writes change nothing", () => {
  it("a set of files is written all or nothing: the second failing leaves the first target as it was", () => {
    const dir = tmp();
    const first = join(dir, "o.npy");
    writeFileSync(first, "previous o");
    expect(() =>
      writeFilesAtomically([
        { path: first, bytes: new Uint8Array(100).fill(1) },
        { path: join(dir, "missing-folder", "lse.npy"), bytes: new Uint8Array(10) },
      ])
    ).toThrow(/could not be written/);
    expect(readFileSync(first, "utf8")).toBe("previous o");
    expect(readdirSync(dir)).toEqual(["o.npy"]);
  });

  const main = fileURLToPath(new URL("../../dist/main.js", import.meta.url));
  const node = (globalThis as { Bun?: unknown; Deno?: unknown }).Bun || (globalThis as { Deno?: unknown }).Deno
    ? "node"
    : process.execPath;
  it.runIf(process.platform !== "win32" && existsSync(main))(
    "a write over the file size limit (ulimit -f) fails with status 1 and keeps the previous output",
    () => {
      const x = inputs();
      const out = join(x.dir, "o.npy"), lse = join(x.dir, "lse.npy");
      writeFileSync(out, "previous o");
      writeFileSync(lse, "previous lse");
      // 4 blocks of 512 bytes: the output (5 KiB) cannot be written; reading is not limited.
      const r = spawnSync("sh", [
        "-c",
        `ulimit -f 4; exec "$0" "$@"`,
        node,
        main,
        "run",
        "--q",
        x.q,
        "--k",
        x.k,
        "--v",
        x.v,
        "--backend",
        "js",
        "--out",
        out,
        "--lse",
        lse,
        "--force",
      ], { encoding: "utf8", timeout: 60_000 });
      expect(r.stderr).toMatch(/could not be written \(over the file size limit\)/);
      expect(r.status).toBe(1);
      expect(readFileSync(out, "utf8")).toBe("previous o");
      expect(readFileSync(lse, "utf8")).toBe("previous lse");
      expect(readdirSync(x.dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    },
  );

  it.runIf(process.platform !== "win32" && existsSync(main))(
    "a FIFO as an input fails at once with a clear error instead of blocking in open()",
    () => {
      const x = inputs();
      const fifo = join(x.dir, "fifo.npy");
      expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
      // The limit only keeps a regression from stalling the suite; a blocked CLI is killed and fails the test.
      const r = spawnSync(node, [main, "run", "--q", fifo, "--k", x.k, "--v", x.v, "--backend", "js"], {
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(r.signal).toBeNull();
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/fifo\.npy: not a regular file/);
    },
  );
});

describe("values out of range", () => {
  it("--sm-scale 1e38 (its f32 fold overflows) fails with OutOfRange instead of a wrong output", async () => {
    const x = inputs();
    const out = join(x.dir, "o.npy");
    expect(await run(x, "--sm-scale", "1e38", "--out", out)).toBe(1);
    expect(stderr).toMatch(/invalid input \(OutOfRange\): smScale 1e\+38 is out of range/);
    expect(existsSync(out)).toBe(false);
  });
});

describe("safetensors headers", () => {
  it("a tensor name given twice is reported as a duplicate, not as an overlap", () => {
    const dir = tmp();
    const header =
      '{"q":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"q":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}';
    const bytes = new Uint8Array(8 + header.length + 12);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(new TextEncoder().encode(header), 8);
    const file = join(dir, "dup.safetensors");
    writeFileSync(file, bytes);
    expect(() => openSafetensors(file)).toThrow(/tensor name 'q' appears twice/);
  });
});
