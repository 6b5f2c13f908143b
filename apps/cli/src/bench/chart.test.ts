import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { hasNumpy } from "../io/fixture-paths.js";
import { escapeXml, niceMax, panelsFrom, renderChart } from "./chart.js";
import type { CaseResult } from "./types.js";

/** A strict little XML well-formedness check: balanced tags, quoted attributes, only the five entities, one root. */
function checkWellFormed(xml: string): { root: string; elements: string[] } {
  const stack: string[] = [];
  const elements: string[] = [];
  let root = "";
  const re = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g;
  let last = 0;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const text = xml.slice(last, m.index);
    if (/[<>]/.test(text)) throw new Error(`stray markup before offset ${m.index}: ${text.slice(0, 40)}`);
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(text)) throw new Error(`bad entity in text near ${m.index}`);
    last = re.lastIndex;
    if (!m[2]) continue;
    const [, close, name, attrs, selfClose] = m;
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(attrs)) throw new Error(`bad entity in attributes of <${name}>`);
    if (close) {
      if (stack.pop() !== name) throw new Error(`</${name}> closes the wrong element`);
      continue;
    }
    if (stack.length === 0) {
      if (root) throw new Error("two root elements");
      root = name;
    }
    elements.push(name);
    if (!selfClose) stack.push(name);
  }
  if (xml.slice(last).trim()) throw new Error("text after the root element");
  if (stack.length) throw new Error(`unclosed <${stack.join("><")}>`);
  return { root, elements };
}

const timing = (ms: number, tops: number) => ({ ms, tops, runs: 3 });
const results: CaseResult[] = [512, 1024, 2048].map((N, i) => ({
  grid: "cpu",
  case: { B: 1, H: 8, N, D: 64, causal: false, dtype: "f32" },
  backends: [{
    backend: "cpu-simd",
    device: "wasm",
    ours: timing(5, 0.09 + i * 0.01),
    exact: timing(8, 0.05),
    accuracy: { cosine: 0.99999, relL1: 0.005 },
  }],
  peers: [
    { peer: "onnxruntime-node MHA (2T)", status: "ok", timing: timing(6, 0.08), accuracy: null },
    { peer: "onnxruntime-web wasm MHA (2T)", status: "failed", error: "integer overflow" },
    { peer: "tfjs <wasm> & co", status: "ok", timing: timing(100, 0.0015), accuracy: null },
  ],
}));

describe("bench chart", () => {
  it("is well-formed SVG with one series per implementation that ran, and a failed peer left out", () => {
    const panels = panelsFrom(results);
    expect(panels).toHaveLength(1);
    expect(panels[0].title).toBe("");
    const series = panels[0].series;
    expect(series.map((s) => s.name)).toEqual([
      "cpu-simd sage (ours)",
      "cpu-simd exact kernel",
      "onnxruntime-node MHA (2T)",
      "tfjs <wasm> & co",
    ]);
    expect(series[0].points.map((p) => p.n)).toEqual([512, 1024, 2048]);
    const svg = renderChart(panels, "SageAttention throughput", "AMD EPYC (2 cores), node 20");
    const { root, elements } = checkWellFormed(svg);
    expect(root).toBe("svg");
    expect(elements.filter((e) => e === "polyline")).toHaveLength(4);
    expect(elements.filter((e) => e === "circle")).toHaveLength(12);
    expect(svg).toContain('data-name="tfjs &lt;wasm&gt; &amp; co"');
    expect(svg).toContain("GOPS"); // under 1 TOPS the axis is in GOPS
    for (const label of ["512", "1K", "2K", "sequence length N", "AMD EPYC (2 cores), node 20"]) {
      expect(svg).toContain(label);
    }
    expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  });

  it("the y axis covers the fastest series", () => {
    const svg = renderChart(panelsFrom(results), "t", "m");
    const ys = [...svg.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(Math.min(...ys)).toBeGreaterThanOrEqual(74); // top margin
    expect(niceMax(0.11 * 1e3 * 1.05)).toBe(200);
    expect(niceMax(452)).toBe(500);
    expect(niceMax(0)).toBe(1);
  });

  it("gives each shape family (D, causal) its own panel, an implementation the same color in each, one legend", () => {
    const two: CaseResult[] = [false, true].flatMap((causal) =>
      results.map((r) => ({ ...r, case: { ...r.case, causal } }))
    );
    const panels = panelsFrom(two);
    expect(panels.map((p) => p.title)).toEqual(["B1 H8 D64 f32", "B1 H8 D64 f32 causal"]);
    const svg = renderChart(panels, "t", "m");
    const { elements } = checkWellFormed(svg);
    expect(elements.filter((e) => e === "polyline")).toHaveLength(8);
    const colors = [...svg.matchAll(/data-name="cpu-simd sage \(ours\)" stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
    expect(colors).toHaveLength(2);
    expect(colors[0]).toBe(colors[1]);
    expect(svg.match(/class="legend"/g)).toHaveLength(1);
    expect(svg).toContain('data-title="B1 H8 D64 f32 causal"');
  });

  it("an empty run still renders a valid chart", () => {
    expect(checkWellFormed(renderChart([], "t", "m")).root).toBe("svg");
  });

  it("escapes the five XML specials", () => expect(escapeXml(`a<b>&"'`)).toBe("a&lt;b&gt;&amp;&quot;&apos;"));

  it.skipIf(!hasNumpy())("python's XML parser (expat) accepts it", () => {
    const svg = renderChart(panelsFrom(results), "SageAttention & peers", "m");
    const r = spawnSync("python3", [
      "-c",
      "import sys, xml.etree.ElementTree as E; t = E.fromstring(sys.stdin.read()); print(len(t.findall('.//{http://www.w3.org/2000/svg}polyline')))",
    ], { input: svg, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("4");
  });
});
