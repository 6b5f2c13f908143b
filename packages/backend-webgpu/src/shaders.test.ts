// Host-side pieces that need no GPU: the loop unroller, kernel assembly and tile choice.
import { describe, expect, it } from "vitest";
import { describeAdapter } from "./acquire.js";
import { kernelSource, unrollLoops } from "./shaders.js";
import {
  chooseTile,
  decodeShape,
  decodeSplits,
  decodeWorkgroupBytes,
  int8Copies,
  invocations,
  paddedHeadDim,
  workgroupBytes,
} from "./tiles.js";

describe("unrollLoops", () => {
  it("repeats a marked body with a constant per index, nested loops too", () => {
    const src =
      "for (var r = 0u; r < RQ; r++) { // unroll\n  for (var c = 1u; c < 3u; c++) { // unroll\n    a[r][c] = 1;\n  }\n}\n";
    const out = unrollLoops(src, { RQ: 2 });
    expect(out).not.toContain("for (");
    for (const [r, c] of [[0, 1], [0, 2], [1, 1], [1, 2]]) {
      expect(out).toMatch(new RegExp(`let r = ${r}u;[\\s\\S]*let c = ${c}u;`));
    }
    expect(out.match(/a\[r\]\[c\] = 1;/g)?.length).toBe(4);
  });

  it("leaves unmarked loops alone and names a missing count", () => {
    expect(unrollLoops("for (var i = 0u; i < n; i++) {\n}\n", {})).toContain("for (var i");
    expect(() => unrollLoops("for (var r = 0u; r < RQ; r++) { // unroll\n}\n", {})).toThrow(/RQ/);
  });
});

describe("kernelSource", () => {
  const counts = { RQ: 4, RP: 1, CK: 4, QD: 2, W: 8, QL: 2, KL: 2, VL: 8, KV: 4, PV_KEYS: 4 };
  it("enables f16 only for the native f16 variant", () => {
    expect(kernelSource("attention_int8", "f16", counts).startsWith("enable f16;")).toBe(true);
    const code = (src: string) => src.replace(/\/\/.*$/gm, "").replace(/(un)?pack2x16float/g, "");
    for (const p of ["f16emu", "f32"] as const) {
      expect(code(kernelSource("attention_int8", p, counts))).not.toMatch(/\bf16\b/);
    }
    expect(kernelSource("pack_f16", "f32")).not.toContain("enable f16");
  });

  it("takes the subgroup row maxima only when given the device's directive, which then heads the module", () => {
    const code = (src: string) => src.replace(/\/\/.*$/gm, "");
    const count = (src: string, re: RegExp) => src.match(re)?.length ?? 0;
    const shared = code(kernelSource("attention_int8", "f16", counts));
    expect(shared).not.toMatch(/subgroup/);
    // 4 per key tile (the row maxima's behind `if (rowMaxViaMemory)`, always true here), 2 around the final row sums.
    expect(count(shared, /workgroupBarrier\(\)/g)).toBe(6);
    expect(count(shared, /rowParts\[i \* ps \+ first\]/g)).toBe(15); // the other 15 tx's parts, unrolled
    for (const directive of ["enable subgroups;", ""]) {
      const sg = kernelSource("attention_int8", "f16", counts, directive);
      expect(sg.startsWith(`enable f16;\n${directive ? `${directive}\n` : ""}//`)).toBe(true);
      // Two xor shuffles for every subgroup size, two more where the 16 tx share one subgroup.
      expect(count(code(sg), /subgroupShuffleXor/g)).toBe(4);
      // Narrower subgroups: the other three quads' parts from rowParts, not the 15 tx's.
      expect(count(code(sg), /rowParts\[i \* 4u \* ps \+ first\]/g)).toBe(3);
      expect(count(code(sg), /rowParts\[i \* ps \+ first\]/g)).toBe(0);
      // The shared path's 6, and 2 once in row_max_setup before its workgroupUniformLoad.
      expect(count(code(sg), /workgroupBarrier\(\)/g)).toBe(8);
      expect(count(code(sg), /workgroupUniformLoad\(/g)).toBe(1);
    }
    // Kernels without a subgroup variant ignore it.
    expect(kernelSource("attention_exact", "f32", { ...counts, W: 32 }, "enable subgroups;")).not.toMatch(/subgroup/);
  });

  it("resolves every include and unrolls every marked loop", () => {
    for (const kernel of ["attention_int8", "attention_exact"] as const) {
      const src = kernelSource(kernel, "f16", { ...counts, W: kernel === "attention_exact" ? 32 : 8 });
      expect(src).not.toContain("//#include");
      expect(src).not.toMatch(/\{ \/\/ unroll$/m);
      expect(src.includes("dot4I8Packed")).toBe(kernel === "attention_int8");
    }
  });
});

describe("tiles", () => {
  it("pads the head dim to whole quads per thread", () => {
    expect([1, 64, 65, 128, 200, 256].map(paddedHeadDim)).toEqual([64, 64, 128, 128, 256, 256]);
  });

  it("keeps the 64-key K block for the INT8 kernel where memory allows, and fits the limit", () => {
    expect(chooseTile("int8", 128, "f16", 49152)).toEqual({ bq: 64, bk: 64, rq: 4 });
    expect(chooseTile("int8", 128, "f16emu", 32768)).toEqual({ bq: 16, bk: 64, rq: 4 });
    expect(chooseTile("int8", 64, "f16", 32768)).toEqual({ bq: 64, bk: 64, rq: 4 });
    expect(chooseTile("int8", 256, "f16", 49152)).toEqual({ bq: 32, bk: 32, rq: 4 });
    expect(chooseTile("exact", 128, "f16", 49152)).toEqual({ bq: 64, bk: 32, rq: 4 });
    expect(chooseTile("exact", 128, "f16", 32768)).toEqual({ bq: 32, bk: 32, rq: 2 });
    expect(chooseTile("int8", 128, "f16", 49152, "32x64")).toEqual({ bq: 32, bk: 64, rq: 4 });
    expect(chooseTile("int8", 128, "f16", 49152, "64x64r8")).toEqual({ bq: 64, bk: 64, rq: 8 });
    expect(chooseTile("int8", 128, "f16", 49152, "16x64r8")).toEqual({ bq: 64, bk: 64, rq: 4 }); // 64 V quads each: the default
    expect(chooseTile("int8", 128, "f16", 32768, "64x64")).toEqual({ bq: 16, bk: 64, rq: 4 }); // does not fit: the default
    for (const dp of [64, 128, 192, 256]) {
      for (const precision of ["f16", "f16emu", "f32"] as const) {
        const t = chooseTile("int8", dp, precision, 32768);
        expect(t && workgroupBytes("int8", t, dp, precision)).toBeLessThanOrEqual(32768);
        expect(t && invocations("int8", t)).toBeLessThanOrEqual(256);
        expect(t && int8Copies(t, dp).VL).toBeLessThanOrEqual(32);
      }
    }
    expect(chooseTile("exact", 256, "f32", 8192)).toBeUndefined();
  });
});

describe("decode shapes", () => {
  it("holds a kv head's query rows in one workgroup up to 32, within the workgroup memory", () => {
    expect(decodeShape(1, 128, 16384)).toEqual({ rb: 1, wg: 64, rs: 1, rt: 1 });
    expect(decodeShape(4, 128, 16384)).toEqual({ rb: 4, wg: 256, rs: 1, rt: 1 });
    expect(decodeShape(16, 128, 16384)).toEqual({ rb: 16, wg: 256, rs: 4, rt: 2 });
    expect(decodeShape(64, 128, 49152)).toEqual({ rb: 32, wg: 256, rs: 8, rt: 4 });
    expect(decodeShape(64, 256, 16384)?.rb).toBe(16);
    for (const dp of [64, 128, 192, 256]) {
      for (const rows of [1, 3, 4, 16, 64, 512]) {
        const s = decodeShape(rows, dp, 16384)!;
        expect(decodeWorkgroupBytes(s.rb, dp)).toBeLessThanOrEqual(16384);
        expect(s.rt).toBeLessThanOrEqual(8);
        expect(s.rb * 8).toBeLessThanOrEqual(s.wg);
      }
    }
  });

  it("splits the key blocks into ranges of whole blocks, about the target count of workgroups", () => {
    expect(decodeSplits(64, 8, 1024)).toEqual({ perSplit: 1, splits: 64 });
    expect(decodeSplits(512, 8, 1024)).toEqual({ perSplit: 4, splits: 128 });
    expect(decodeSplits(64, 8, 256)).toEqual({ perSplit: 2, splits: 32 });
    expect(decodeSplits(5, 2, 1)).toEqual({ perSplit: 5, splits: 1 });
    expect(decodeSplits(5, 2, 3)).toEqual({ perSplit: 3, splits: 2 });
  });
});

describe("describeAdapter", () => {
  it("recognises Dawn's null backend and fallback adapters", () => {
    expect(describeAdapter({ device: "null-backend", backendType: 1 }).nullBackend).toBe(true);
    expect(describeAdapter({ vendor: "65541", description: "llvmpipe (LLVM 15.0.6, 256 bits)" }).fallback).toBe(true);
    expect(describeAdapter({ vendor: "google", description: "SwiftShader Device (Subzero)" }).fallback).toBe(true);
    const h100 = describeAdapter({ vendor: "4318", device: "9008", description: "NVIDIA H100 80GB HBM3" });
    expect(h100).toEqual({ name: "NVIDIA H100 80GB HBM3 (0x10de 0x2330)", fallback: false, nullBackend: false });
  });
});
