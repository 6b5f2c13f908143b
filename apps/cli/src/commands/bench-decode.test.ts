import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BOUNDS } from "@sageattn/core";
import { benchCommand } from "./bench.js";
import { cacheBytesPerRow, type DecodeRow, parseDecodeArgs } from "./bench-decode.js";

let stdout = "";
let stderr = "";
beforeEach(() => {
  stdout = stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((s) => ((stdout += String(s)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((s) => ((stderr += String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

describe("sageattn bench --decode", () => {
  it("parses sizes with K suffixes and the shape, with the defaults of the issue", () => {
    const a = parseDecodeArgs(["--decode", "--nk", "1K,4k,100", "--nq", "1,4"]);
    expect(a.nk).toEqual([1024, 4096, 100]);
    expect(a.nq).toEqual([1, 4]);
    expect([a.B, a.H, a.Hkv, a.D]).toEqual([1, 32, 8, 128]);
    expect(parseDecodeArgs(["--decode"]).nk).toEqual([1024, 4096, 32768, 131072]);
  });

  it("takes --values f16|int8 (default f16) and rejects any other format with a usage error (exit 2)", async () => {
    expect(parseDecodeArgs(["--decode"]).valueFormat).toBe("f16");
    expect(parseDecodeArgs(["--decode", "--values", "int8"]).valueFormat).toBe("int8");
    expect(() => parseDecodeArgs(["--values", "fp8"])).toThrow(/--values must be one of f16, int8, got fp8/);
    expect(await benchCommand(["--decode", "--values", "int4"])).toBe(2);
    expect(stderr).toMatch(/--values must be one of f16, int8, got int4/);
  });

  it("rejects bad sizes and a head count that is not a multiple of the kv heads (exit 2)", async () => {
    expect(() => parseDecodeArgs(["--nk", "1M"])).toThrow(/--nk/);
    expect(await benchCommand(["--decode", "--heads", "6", "--heads-kv", "4"])).toBe(2);
  });

  it("counts the bytes each backend's cache holds per row and kv head", () => {
    expect(cacheBytesPerRow("cpu-simd", 128)).toBeCloseTo(3 * 128 + 4 / 64 + 8, 9);
    expect(cacheBytesPerRow("cuda", 128)).toBeCloseTo(3 * 128 + 4 / 64, 9);
    // int8 values: one byte per channel and an f32 scale per row, beside the same INT8 K.
    expect(cacheBytesPerRow("cuda", 128, "int8")).toBeCloseTo(2 * 128 + 4 + 4 / 64, 9);
    expect(cacheBytesPerRow("js", 64, "f16")).toBeCloseTo(3 * 64 + 4 / 64, 9);
  });

  it("times the js backend's cache on a small shape: one JSON document with its rows, accurate", async () => {
    const code = await benchCommand([
      "--decode",
      "--backend",
      "js",
      "--nk",
      "70",
      "--nq",
      "1,3",
      "--heads",
      "4",
      "--heads-kv",
      "2",
      "--head-dim",
      "16",
      "--json",
    ]);
    expect(code).toBe(0);
    const doc = JSON.parse(stdout) as { tool: string; rows: DecodeRow[] };
    expect(doc.tool).toBe("sageattn bench --decode");
    expect(doc.rows.map((r) => [r.backend, r.nk, r.nq])).toEqual([["js", 70, 1], ["js", 70, 3]]);
    for (const r of doc.rows) {
      expect(r.stepMs).toBeGreaterThan(0);
      expect(r.attendMs).toBeGreaterThan(0);
      expect(r.cacheBytes).toBe(2 * 70 * cacheBytesPerRow("js", 16));
      expect(r.cosine).toBeGreaterThanOrEqual(BOUNDS.clearlyWrong.minCosine);
    }
  }, 120_000);

  it("times an int8 cache on js: the format in the header and the settings, V's bytes about halved", async () => {
    const args = ["--decode", "--backend", "js", "--nk", "70", "--nq", "1", "--heads", "4", "--heads-kv", "2"];
    expect(await benchCommand([...args, "--head-dim", "16", "--values", "int8", "--json"])).toBe(0);
    const doc = JSON.parse(stdout) as { valueFormat: string; rows: DecodeRow[] };
    expect(doc.valueFormat).toBe("int8");
    expect(doc.rows[0].cacheBytes).toBe(2 * 70 * (16 + 4 / 64 + 16 + 4));
    expect(doc.rows[0].cosine).toBeGreaterThanOrEqual(BOUNDS.clearlyWrong.minCosine);
    stdout = "";
    expect(await benchCommand([...args, "--head-dim", "16", "--values", "int8"])).toBe(0);
    expect(stdout.split("\n")[0]).toMatch(/, V in int8 \(a scale per token\)$/);
  }, 120_000);

  it("reports a backend without int8 values as a typed error, exit 1, no stack", async () => {
    const code = await benchCommand(["--decode", "--backend", "cpu-simd", "--nk", "70", "--values", "int8"]);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /sageattn bench: error: backend cpu-simd unavailable \(Unsupported\): int8 values \(valueFormat\) not supported/,
    );
    expect(stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
