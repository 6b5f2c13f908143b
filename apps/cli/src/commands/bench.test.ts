import { BOUNDS } from "@sageattn/core";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { BenchDocument } from "../bench/report.js";
import { benchCommand } from "./bench.js";
import { parseBenchArgs } from "./bench-args.js";

let stdout = "";
let stderr = "";
beforeEach(() => {
  stdout = stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((s) => ((stdout += String(s)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((s) => ((stderr += String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

describe("sageattn bench (smoke: quick grid, js backend)", () => {
  it("prints one JSON document with positive times, TOPS and accuracy near exact, and writes the chart", async () => {
    const chart = join(mkdtempSync(join(tmpdir(), "sageattn-bench-")), "bench.svg");
    const code = await benchCommand(["--grid", "quick", "--backend", "js", "--json", "--chart", chart]);
    expect(stderr).toBe(""); // no progress display with --json (and none when piped)
    expect(code).toBe(0);
    const doc = JSON.parse(stdout) as BenchDocument;
    expect(doc.tool).toBe("sageattn bench");
    expect(doc.machine.cpu.length).toBeGreaterThan(0);
    expect(doc.machine.runtime).toMatch(/^(node|bun|deno) /);
    expect(doc.backends.map((b) => b.name)).toEqual(["js"]);
    expect(doc.results.map((r) => r.case.N)).toEqual([64, 128]);
    for (const r of doc.results) {
      const b = r.backends[0];
      expect("ms" in b.ours && b.ours.ms > 0 && b.ours.tops > 0 && b.ours.runs >= 3).toBe(true);
      expect(b.exact && "ms" in b.exact && b.exact.tops > 0).toBe(true);
      expect(b.accuracy!.cosine).toBeGreaterThan(0.999);
      expect(b.accuracy!.relL1).toBeLessThanOrEqual(BOUNDS.heavyTail.maxRelL1);
      expect(r.peers).toEqual([]);
    }
    expect(doc.chart).toBe(chart);
    expect(existsSync(chart)).toBe(true);
    expect(readFileSync(chart, "utf8")).toContain('data-name="js sage (ours)"');
  });

  it("--sizes that leave no case of the grid: a usage error naming the grid's lengths, nothing measured", async () => {
    const code = await benchCommand(["--grid", "quick", "--backend", "js", "--sizes", "999", "--json"]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("no case of the quick grid matches --sizes 999 (its sequence lengths: 64, 128;");
  });

  it("--qk-granularity and --inputs are in the document; row beats block on massive inputs", async () => {
    const run = async (...extra: string[]) => {
      stdout = "";
      // Exit 1 is allowed: on massive inputs even row can fall under the clearly-wrong cosine (core's conformance
      // checks it against the Sage oracle only).
      const code = await benchCommand(["--grid", "quick", "--backend", "js", "--sizes", "64", "--json", ...extra]);
      expect(code).not.toBe(2);
      expect(stderr).toBe("");
      return JSON.parse(stdout) as BenchDocument;
    };
    const plain = await run();
    expect(plain.settings).toEqual({ inputs: "gaussian", qkGranularity: null, pvAccumulation: null });
    const row = await run("--qk-granularity", "row", "--inputs", "massive");
    expect(row.settings).toEqual({ inputs: "massive", qkGranularity: "row", pvAccumulation: null });
    const block = await run("--qk-granularity", "block", "--inputs", "massive");
    expect(block.settings).toEqual({ inputs: "massive", qkGranularity: "block", pvAccumulation: null });
    const cosine = (d: BenchDocument) => d.results[0].backends[0].accuracy!.cosine;
    expect(cosine(plain)).toBeGreaterThan(0.999);
    expect(cosine(block)).toBeLessThan(cosine(row));
    expect(cosine(row)).toBeLessThan(cosine(plain));
  });

  it("--pv is in the document and reaches ours: int8 near f16's accuracy, fp8 further off and not flagged", async () => {
    const run = async (pv: string) => {
      stdout = "";
      const code = await benchCommand(["--grid", "quick", "--backend", "js", "--sizes", "128", "--json", "--pv", pv]);
      expect(code, pv).toBe(0);
      const doc = JSON.parse(stdout) as BenchDocument;
      expect(doc.settings).toEqual({ inputs: "gaussian", qkGranularity: null, pvAccumulation: pv });
      return doc.results[0].backends[0].accuracy!;
    };
    const f16 = await run("f16-block");
    const int8 = await run("int8");
    const fp8 = await run("fp8");
    expect(int8.relL1).toBeLessThanOrEqual(BOUNDS.exact.maxRelL1);
    expect(fp8.relL1).toBeGreaterThan(int8.relL1);
    expect(int8.relL1).toBeGreaterThan(f16.relL1);
  });

  it("the table names the machine and the columns", async () => {
    expect(await benchCommand(["--grid", "quick", "--backend", "js"])).toBe(0);
    expect(stdout).toMatch(/^sageattn bench · .+ \(\d+ cores[^)]*\), (node|bun|deno) /);
    expect(stdout).toContain("js sage (ours)");
    expect(stdout).toMatch(/shape\s+implementation\s+time\s+GOPS\s+ours\/this\s+cos\s+rel-L1/);
  });
});

describe("sageattn bench: bad command lines", () => {
  it.each(
    [
      [["--grid", "huge"], 2, "--grid must be one of cpu, cpu-large, gpu, quick"],
      [["--threads", "0"], 2, "--threads must be a whole number"],
      [["--chart", "out.png"], 2, "name it *.svg"],
      [["--bogus"], 2, "bogus"],
      [["--qk-granularity", "tile"], 2, "--qk-granularity must be one of block, warp, row, thread, got tile"],
      [["--qk-granularity", "ROW"], 2, "--qk-granularity must be one of block, warp, row, thread, got ROW"],
      [["--inputs", "uniform"], 2, "--inputs must be one of gaussian, massive, got uniform"],
      [["--pv", "e4m3"], 2, "--pv must be one of f16-block, f32, fp8, int8, got e4m3"],
      [["--pv", "INT8"], 2, "--pv must be one of f16-block, f32, fp8, int8, got INT8"],
      [["--backend", "tpu", "--grid", "quick"], 1, 'no backend named "tpu"'],
      [["--chart", "/nonexistent/dir/b.svg", "--grid", "quick", "--backend", "js"], 1, "no folder /nonexistent/dir"],
    ] as const,
  )("%j → exit %i", async (argv, exit, text) => {
    expect(await benchCommand([...argv])).toBe(exit);
    expect(stderr).toContain(text);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it("--help", async () => {
    expect(await benchCommand(["-h"])).toBe(0);
    expect(stdout).toContain("Usage: sageattn bench");
    expect(stdout).toContain("--qk-granularity block|warp|row|thread");
    expect(stdout).toContain("--pv f16-block|f32|fp8|int8");
    expect(stdout).toContain("--inputs gaussian|massive");
  });
});

describe("sageattn bench: --qk-granularity, --pv and --inputs", () => {
  it.each(["block", "warp", "row", "thread"] as const)("--qk-granularity %s", (g) => {
    expect(parseBenchArgs(["--qk-granularity", g]).qkGranularity).toBe(g);
  });

  it.each(["f16-block", "f32", "fp8", "int8"] as const)("--pv %s", (pv) => {
    expect(parseBenchArgs(["--pv", pv]).pvAccumulation).toBe(pv);
  });

  it.each(["gaussian", "massive"] as const)("--inputs %s", (d) => {
    expect(parseBenchArgs(["--inputs", d]).inputs).toBe(d);
  });

  it("defaults: granularity and P·V mode not passed, gaussian inputs", () => {
    const args = parseBenchArgs([]);
    expect(args.qkGranularity).toBeUndefined();
    expect(args.pvAccumulation).toBeUndefined();
    expect(args.inputs).toBe("gaussian");
  });
});
