import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import {
  accuracy,
  BOUNDS,
  decode16,
  type HostTensor,
  hostTensor,
  resolveProblem,
  sageReference,
  type Shape4,
  toCanonicalF32,
} from "@sageattn/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fixture, hasNumpy, python } from "../io/fixture-paths.js";
import { readNpy } from "../io/npy.js";
import { readSafetensors } from "../io/safetensors.js";
import type { FileTensor } from "../io/tensor-file.js";
import { runCommand } from "./run.js";

let stdout = "";
let stderr = "";
beforeEach(() => {
  stdout = stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((s) => ((stdout += String(s)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((s) => ((stderr += String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

const tmp = () => mkdtempSync(join(tmpdir(), "sageattn-run-"));
const f32 = (
  t: FileTensor,
) => (t.data instanceof Float32Array ? t.data : decode16(t.data, t.dtype === "bf16" ? "bf16" : "f16"));
const host = (t: FileTensor, layout: "HND" | "NHD" = "HND") =>
  hostTensor(t.data, (t.shape.length === 3 ? [1, ...t.shape] : t.shape) as unknown as Shape4, {
    dtype: t.dtype,
    layout,
  });

/** Core's sage oracle on the same inputs, canonical HND f32. */
function sageOracle(q: HostTensor, k: HostTensor, v: HostTensor, options: { causal?: boolean; smScale?: number } = {}) {
  const p = Effect.runSync(resolveProblem(q, k, v, options));
  return sageReference(p, toCanonicalF32(q), toCanonicalF32(k), toCanonicalF32(v));
}

describe("sageattn run on numpy-written files", () => {
  it("f32 HND .npy (K with channel bias): output and LSE match the sage oracle and numpy's exact attention", async () => {
    const dir = tmp();
    const code = await runCommand([
      "--q",
      fixture("a_q.npy"),
      "--k",
      fixture("a_k.npy"),
      "--v",
      fixture("a_v.npy"),
      "--backend",
      "js",
      "--out",
      join(dir, "o.npy"),
      "--lse",
      join(dir, "lse.npy"),
      "--compare",
      "--json",
    ]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.backend).toBe("js");
    expect(report.output).toEqual({ path: join(dir, "o.npy"), dtype: "f32", shape: [1, 2, 40, 16] });
    expect(report.compare.cosine).toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
    expect(report.tops).toBeGreaterThan(0);

    const o = readNpy(join(dir, "o.npy"));
    const lse = readNpy(join(dir, "lse.npy"));
    expect(lse.shape).toEqual([1, 2, 40]);
    const [q, k, v] = ["a_q.npy", "a_k.npy", "a_v.npy"].map((n) => host(readNpy(fixture(n))));
    const oracle = sageOracle(q, k, v);
    expect(accuracy(o.data as Float32Array, oracle.output).maxAbs).toBeLessThan(1e-6);
    expect(accuracy(lse.data as Float32Array, oracle.lse).maxAbs).toBeLessThan(1e-5);
    const exact = accuracy(o.data as Float32Array, readNpy(fixture("a_exact_o.npy")).data as Float32Array);
    expect(exact.cosine).toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
    expect(exact.relL1).toBeLessThanOrEqual(BOUNDS.exact.maxRelL1);
    expect(accuracy(lse.data as Float32Array, readNpy(fixture("a_exact_lse.npy")).data as Float32Array).maxAbs)
      .toBeLessThan(BOUNDS.lseVsSage);
    expect(report.compare.relL1).toBeCloseTo(exact.relL1, 4);
  });

  it("causal with --sm-scale on the best available backend matches numpy's exact causal attention", async () => {
    const dir = tmp();
    const code = await runCommand([
      "--q",
      fixture("a_q.npy"),
      "--k",
      fixture("a_k.npy"),
      "--v",
      fixture("a_v.npy"),
      "--causal",
      "--sm-scale",
      "0.2",
      "--out",
      join(dir, "o.npy"),
      "--lse",
      join(dir, "lse.npy"),
    ]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^backend {3}\S+/);
    expect(stdout).toContain("causal, smScale 0.2");
    const o = readNpy(join(dir, "o.npy")).data as Float32Array;
    const exact = accuracy(o, readNpy(fixture("a_exact_causal_o.npy")).data as Float32Array);
    expect(exact.cosine).toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
    expect(exact.relL1).toBeLessThanOrEqual(BOUNDS.exact.maxRelL1);
    const lse = readNpy(join(dir, "lse.npy")).data as Float32Array;
    expect(accuracy(lse, readNpy(fixture("a_exact_causal_lse.npy")).data as Float32Array).maxAbs).toBeLessThan(
      BOUNDS.lseVsSage,
    );
  });

  it("f16 NHD 3-D files with GQA (4 query heads, 2 kv heads), causal: f16 [N, H, D] out", async () => {
    const dir = tmp();
    const code = await runCommand([
      "--q",
      fixture("b_q.npy"),
      "--k",
      fixture("b_k.npy"),
      "--v",
      fixture("b_v.npy"),
      "--layout",
      "nhd",
      "--causal",
      "--backend",
      "js",
      "--out",
      join(dir, "o.npy"),
    ]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const o = readNpy(join(dir, "o.npy"));
    expect(o.dtype).toBe("f16");
    expect(o.shape).toEqual([33, 4, 8]);
    const [q, k, v] = ["b_q.npy", "b_k.npy", "b_v.npy"].map((n) => host(readNpy(fixture(n)), "NHD"));
    const oracle = sageOracle(q, k, v, { causal: true });
    const ours = toCanonicalF32(host(o, "NHD"));
    expect(accuracy(ours, oracle.output).maxAbs).toBeLessThan(2e-3); // f16 output rounding
    const exact = accuracy(f32(o), readNpy(fixture("b_exact_o_nhd.npy")).data as Float32Array);
    expect(exact.cosine).toBeGreaterThanOrEqual(BOUNDS.heavyTail.minCosine);
  });

  it("bf16 .safetensors in (--in, with an unrelated I64 tensor) → one .safetensors with o (BF16) and lse (F32)", async () => {
    const dir = tmp();
    const out = join(dir, "o.safetensors");
    const code = await runCommand([
      "--in",
      fixture("c_qkv_bf16.safetensors"),
      "--backend",
      "js",
      "--out",
      out,
      "--lse",
      out,
    ]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const back = readSafetensors(out, ["o", "lse"]);
    expect(back.get("o")!.dtype).toBe("bf16");
    expect(back.get("o")!.shape).toEqual([1, 2, 24, 32]);
    const o = f32(back.get("o")!);
    const exact = accuracy(o, readNpy(fixture("c_exact_o.npy")).data as Float32Array);
    expect(exact.cosine).toBeGreaterThan(0.999);
    expect(exact.relL1).toBeLessThanOrEqual(BOUNDS.exact.maxRelL1);
    expect(
      accuracy(back.get("lse")!.data as Float32Array, readNpy(fixture("c_exact_lse.npy")).data as Float32Array).maxAbs,
    ).toBeLessThan(BOUNDS.lseVsSage);
    const qkv = readSafetensors(fixture("c_qkv_bf16.safetensors"), ["q", "k", "v"]);
    const [q, k, v] = ["q", "k", "v"].map((n) => host(qkv.get(n)!));
    expect(accuracy(o, sageOracle(q, k, v).output).relL1).toBeLessThan(8e-3); // bf16 output rounding only
    if (hasNumpy()) {
      const code =
        "import json,struct,sys,numpy as np\nr=open(sys.argv[1],'rb').read();n=struct.unpack('<Q',r[:8])[0];h=json.loads(r[8:8+n])\nprint(json.dumps({k:[v['dtype'],v['shape']] for k,v in h.items() if k!='__metadata__'}))";
      expect(JSON.parse(python(code, [out]))).toEqual({ o: ["BF16", [1, 2, 24, 32]], lse: ["F32", [1, 2, 24]] });
    }
  });

  it("bf16 output to .npy is widened to f32 (npy has no bf16)", async () => {
    const dir = tmp();
    const code = await runCommand([
      "--in",
      fixture("c_qkv_bf16.safetensors"),
      "--backend",
      "js",
      "--out",
      join(dir, "o.npy"),
      "--json",
    ]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).output.dtype).toBe("f32");
    expect(readNpy(join(dir, "o.npy")).dtype).toBe("f32");
  });
});

describe("sageattn run: errors are one clear line and an exit status, never a stack trace", () => {
  const qkv = (
    k = "a_k.npy",
  ) => ["--q", fixture("a_q.npy"), "--k", fixture(k), "--v", fixture("a_v.npy"), "--backend", "js"];
  it.each(
    [
      ["no inputs", [], 2, "give --q, --k and --v"],
      ["unknown flag", ["--frobnicate"], 2, "frobnicate"],
      ["bad layout", [...qkv(), "--layout", "BHSD"], 2, "--layout must be HND or NHD"],
      ["bad sm-scale", [...qkv(), "--sm-scale", "abc"], 2, "--sm-scale must be a finite nonzero number"],
      ["--in with a .npy", ["--in", fixture("a_q.npy")], 2, "--in takes a .safetensors file"],
      ["--out without a known extension", [...qkv(), "--out", "o.bin"], 2, "name a .npy or .safetensors file"],
      ["truncated .npy", [...qkv("bad_truncated.npy")], 1, "truncated"],
      ["int32 .npy", [...qkv("bad_int32.npy")], 1, "dtype '<i4' is not supported"],
      ["head dims differ", [...qkv("bad_k_wrong_d.npy")], 1, "head dims differ: q 16, k 12"],
      ["huge safetensors header", ["--in", fixture("bad_huge_header.safetensors")], 1, "over the 100000000-byte limit"],
      ["bad JSON header", ["--in", fixture("bad_json.safetensors")], 1, "its header is not JSON"],
      [
        "missing tensor",
        ["--in", fixture("c_qkv_bf16.safetensors"), "--q-name", "query"],
        1,
        "no tensor named 'query'",
      ],
      ["missing file", ["--q", "/nonexistent/q.npy", "--k", "k.npy", "--v", "v.npy"], 1, "no such file"],
      ["unknown backend", [...qkv(), "--backend", "tpu"], 1, 'no backend named "tpu"'],
      [
        "--out in a missing folder",
        [...qkv(), "--out", "/nonexistent/dir/o.npy"],
        1,
        "cannot write there: no folder /nonexistent/dir",
      ],
    ] as const,
  )("%s → exit %i", async (_, argv, exit, text) => {
    const code = await runCommand([...argv]);
    expect(code).toBe(exit);
    expect(stderr).toContain(text);
    expect(stderr).toMatch(/^sageattn run: error: /);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stdout).toBe("");
  });

  it("--help prints the usage and exits 0", async () => {
    expect(await runCommand(["--help"])).toBe(0);
    expect(stdout).toContain("Usage: sageattn run");
    expect(stdout).toContain("--compare");
  });
});
