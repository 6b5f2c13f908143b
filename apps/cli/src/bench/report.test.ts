import { describe, expect, it } from "vitest";
import { type BenchDocument, type BenchSettings, formatTable } from "./report.js";
import type { CaseResult } from "./types.js";

const DEFAULTS: BenchSettings = { inputs: "gaussian", qkGranularity: null, pvAccumulation: null };

const timing = (ms: number, tops: number) => ({ ms, tops, runs: 3 });
const result = (N: number, oursCos: number): CaseResult => ({
  grid: "cpu",
  case: { B: 1, H: 8, N, D: 64, causal: false, dtype: "f32" },
  backends: [{
    backend: "cpu-simd",
    device: "wasm",
    ours: timing(10, 0.09),
    exact: timing(20, 0.045),
    accuracy: { cosine: oursCos, relL1: 0.011 },
  }],
  peers: [
    { peer: "onnxruntime-node MHA (2T)", status: "ok", timing: timing(12, 0.06), accuracy: { cosine: 1, relL1: 3e-7 } },
    { peer: "onnxruntime-web wasm MHA (2T)", status: "failed", error: "Integer overflow" },
    { peer: "tfjs-wasm", status: "unavailable", error: "Cannot find package '@tensorflow/tfjs-core'" },
  ],
});
const doc = (results: CaseResult[], settings: BenchSettings = DEFAULTS): BenchDocument => ({
  tool: "sageattn bench",
  date: "2026-11-25T00:00:00Z",
  machine: {
    cpu: "AMD EPYC",
    cores: 2,
    memoryGiB: 24,
    os: "linux x64",
    runtime: "node 20.20.2",
    cpuFeatures: ["avx2", "fma"],
  },
  threads: 2,
  settings,
  backends: [{ name: "cpu-simd", device: "AMD EPYC", details: { build: "simd128" } }],
  rejected: [{ backend: "cuda", reason: "LibraryNotFound", message: "no libsageattn_cuda.so" }],
  notes: ["a note"],
  results,
  chart: null,
});

describe("bench table", () => {
  it("shows ours/peer ratios, failures and unavailable peers with their reasons, and the machine", () => {
    const text = formatTable(doc([result(512, 0.99998)]));
    expect(text.split("\n")[0]).toBe(
      "sageattn bench · AMD EPYC (2 cores, avx2 fma), node 20.20.2, linux x64 · 2 threads",
    );
    expect(text.split("\n")[1]).toBe(
      "  inputs gaussian · qkGranularity the library's default · pvAccumulation the library's default",
    );
    expect(text).toContain("cpu-simd: AMD EPYC (build simd128)");
    expect(text).toContain("cuda: not run (LibraryNotFound: no libsageattn_cuda.so)");
    expect(text).toContain("note: a note");
    expect(text).toMatch(/1×8×512×64 f32\s+cpu-simd sage \(ours\)\s+10\.0 ms\s+90\.0\s+0\.99998\s+1\.1e-2/);
    expect(text).toMatch(/cpu-simd exact kernel\s+20\.0 ms\s+45\.0\s+2\.00×/);
    expect(text).toMatch(/onnxruntime-node MHA \(2T\)\s+12\.0 ms\s+60\.0\s+1\.50×/);
    expect(text).toContain("↳ failed: Integer overflow");
    expect(text).toContain("↳ unavailable: Cannot find package '@tensorflow/tfjs-core'");
    expect(text).not.toContain("✗");
  });

  it("names the inputs and a qkGranularity and pvAccumulation passed to ours", () => {
    const settings = { inputs: "massive", qkGranularity: "row", pvAccumulation: "int8" } as const;
    const text = formatTable(doc([result(512, 0.99998)], settings));
    expect(text.split("\n")[1]).toBe(
      "  inputs massive · qkGranularity row (our sage rows only) · pvAccumulation int8 (our sage rows only)",
    );
  });

  it("does not flag fp8 P·V's expected error (BOUNDS.fp8), and holds int8 to the usual bar", () => {
    const fp8 = { ...DEFAULTS, pvAccumulation: "fp8" } as const;
    const int8 = { ...DEFAULTS, pvAccumulation: "int8" } as const;
    const at = (cos: number, relL1: number) => {
      const r = result(512, cos);
      return [{ ...r, backends: [{ ...r.backends[0], accuracy: { cosine: cos, relL1 } }] }];
    };
    // fp8's oracle itself: cos 0.9992–0.9994, rel-L1 0.036–0.044 against exact (N 256–4096).
    expect(formatTable(doc(at(0.9989, 0.048), fp8))).not.toContain("✗");
    expect(formatTable(doc(at(0.9989, 0.048), int8))).toMatch(/0\.99890 ✗/);
    expect(formatTable(doc(at(0.9989, 0.048)))).toMatch(/0\.99890 ✗/);
    const wrong = formatTable(doc(at(0.9975, 0.03), fp8));
    expect(wrong).toMatch(/0\.99750 ✗/);
    expect(wrong).toContain("(cos < 0.9982 or rel-L1 > 0.075)");
  });

  it("flags an output far from exact (an all-zero output has cosine NaN)", () => {
    const text = formatTable(doc([result(512, NaN)]));
    expect(text).toMatch(/NaN ✗/);
    expect(text).toContain("that output is wrong");
  });

  it("holds massive-channel inputs to a looser bar: per-block INT8 itself lands near cos 0.994 there", () => {
    const massive = { inputs: "massive", qkGranularity: null, pvAccumulation: null } as const;
    expect(formatTable(doc([result(512, 0.995)]))).toMatch(/0\.99500 ✗/);
    expect(formatTable(doc([result(512, 0.995)], massive))).not.toContain("✗");
    const wrong = formatTable(doc([result(512, 0.985)], massive));
    expect(wrong).toMatch(/0\.98500 ✗/);
    expect(wrong).toContain("(cos < 0.99 or rel-L1 > 0.05)");
  });
});
