import { BOUNDS } from "@sageattn/core";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { BenchDocument } from "../bench/report.js";
import { benchCommand } from "./bench.js";

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
  });
});
