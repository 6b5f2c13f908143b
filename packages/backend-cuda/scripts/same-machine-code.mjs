#!/usr/bin/env node
// Whether a source change leaves the GPU machine code as it was: compiles csrc/ files as they are in a git revision
// and as they are in the work tree, with the build's flags (nvcc-flags.sh), to cubins, and compares every kernel's
// code bytes. Identical bytes need no GPU to show that a refactor costs nothing; a difference needs a timed A/B.
// Needs nvcc only (no GPU, no disassembler).
//   node scripts/same-machine-code.mjs [REV] [csrc/FILE.cu ...] [--arch 90]
//   e.g. node scripts/same-machine-code.mjs HEAD csrc/attention_sm90.cu
// REV defaults to HEAD, the files to csrc/attention_sm90.cu (built for sm_90a, as build.sh does; others for sm_ARCH).
// The revision's sources compile against the work tree's csrc/generated/ (git ignores it). Exit status 1 if any
// kernel differs or is present on one side only.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
let arch = "90";
const archAt = args.indexOf("--arch");
if (archAt >= 0) [, arch] = args.splice(archAt, 2);
const rev = args.length > 0 && !args[0].endsWith(".cu") ? args.shift() : "HEAD";
const files = args.length > 0 ? args : ["csrc/attention_sm90.cu"];
const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { cwd: pkg, encoding: "utf8", ...opts });

const nvcc = process.env.NVCC ?? (existsSync("/usr/local/cuda/bin/nvcc") ? "/usr/local/cuda/bin/nvcc" : "nvcc");
const [flags, hopper] = run("bash", [
  "-c",
  'source scripts/nvcc-flags.sh; echo "${NVCC_FLAGS[*]}"; echo "${HOPPER[*]}"',
])
  .trim().split("\n").map((line) => line.split(" "));
if (!existsSync(join(pkg, "csrc/generated/core_constants.h"))) run("node", ["scripts/generate-headers.mjs"]);

const tmp = mkdtempSync(join(tmpdir(), "same-machine-code-"));
try {
  // The revision's csrc/ (as a tree of this package), then the work tree's generated headers beside it.
  const [top, prefix] = run("git", ["rev-parse", "--show-toplevel", "--show-prefix"]).split("\n");
  const old = join(tmp, "rev");
  mkdirSync(old);
  execFileSync("bash", ["-c", 'git archive "$0:$1" csrc | tar -x -C "$2"', rev, prefix, old], { cwd: top });
  execFileSync("cp", ["-r", join(pkg, "csrc/generated"), join(old, "csrc/")]);

  let differs = 0;
  for (const file of files) {
    const target = file.endsWith("attention_sm90.cu") ? hopper : [`-gencode=arch=compute_${arch},code=sm_${arch}`];
    const cubin = (root, tag) => {
      const out = join(tmp, `${tag}.cubin`);
      run(nvcc, [...flags, ...target, "-cubin", "-o", out, join(root, file)], { stdio: ["ignore", "ignore", "pipe"] });
      return textSections(readFileSync(out));
    };
    const [before, after] = [cubin(old, "rev"), cubin(pkg, "tree")];
    console.log(`${file} (${rev} → work tree):`);
    for (const name of new Set([...before.keys(), ...after.keys()])) {
      const a = before.get(name), b = after.get(name);
      const what = !a ? "only in the work tree" : !b ? `only in ${rev}` : compare(a, b);
      if (what !== "same") differs++;
      console.log(`  ${what.padEnd(40)} ${shortName(name)}`);
    }
  }
  console.log(differs === 0 ? "identical machine code" : `${differs} kernel(s) differ`);
  process.exitCode = differs === 0 ? 0 : 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

/** The `.text.<kernel>` sections of a cubin (a 64-bit little-endian ELF): the machine code, one per kernel. */
function textSections(elf) {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const shoff = Number(view.getBigUint64(0x28, true));
  const [entSize, count, namesAt] = [
    view.getUint16(0x3a, true),
    view.getUint16(0x3c, true),
    view.getUint16(0x3e, true),
  ];
  const section = (i) => {
    const at = shoff + i * entSize;
    return {
      name: view.getUint32(at, true),
      offset: Number(view.getBigUint64(at + 0x18, true)),
      size: Number(view.getBigUint64(at + 0x20, true)),
    };
  };
  const names = section(namesAt);
  const nameOf = (o) => {
    const start = names.offset + o;
    return elf.toString("latin1", start, elf.indexOf(0, start));
  };
  const out = new Map();
  for (let i = 0; i < count; i++) {
    const s = section(i);
    const name = nameOf(s.name);
    if (name.startsWith(".text.")) out.set(stableName(name.slice(6)), elf.subarray(s.offset, s.offset + s.size));
  }
  return out;
}

/** Symbol names without the anonymous namespace's per-file hash, which differs between the two source paths. */
function stableName(name) {
  return name.replace(/\d+_GLOBAL__N__[0-9a-f]{8}_\d+_\w+?_cu_[0-9a-f]{8}/, "(anon)");
}

/** A kernel's name and template arguments (`attention_sm90_kernel<128, PvMode 1, false>`), else the symbol as is. */
function shortName(name) {
  for (const m of name.matchAll(/(\d+)[A-Za-z_]/g)) {
    const start = m.index + m[1].length, end = start + Number(m[1]);
    if (name[end] !== "I" || !/^\w+$/.test(name.slice(start, end))) continue;
    const args = name.slice(end).match(/^I(.*?)EEv/)?.[1] ?? "";
    const parts = [...args.matchAll(/L(?:i(\d+)|b([01])|NS_\d+(\w+?)E(\d+))E/g)].map(([, i, b, e, v]) =>
      i ?? (b !== undefined ? String(b === "1") : `${e} ${v}`)
    );
    return `${name.slice(start, end)}<${parts.join(", ")}>`;
  }
  return name;
}

function compare(a, b) {
  if (a.equals(b)) return "same";
  const size = 16; // SASS instructions are 16 bytes from Volta on
  let changed = 0;
  for (let i = 0; i < Math.max(a.length, b.length); i += size) {
    if (!a.subarray(i, i + size).equals(b.subarray(i, i + size))) changed++;
  }
  const sha = (x) => createHash("sha1").update(x).digest("hex").slice(0, 8);
  return `differs: ${changed} of ${b.length / size} (${sha(a)}→${sha(b)})`;
}
