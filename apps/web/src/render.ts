import { cssGradient, INFERNO, type Palette, VIRIDIS } from "./colormap.js";
import { absDifference, exactAttentionMap, type MapSizes, outputError, sageAttentionMap } from "./attention-map.js";
import { drawHeatmap, type Grid, gridMax, gridPercentile, type Scale } from "./heatmap.js";
import { formatCosine, formatMs, formatOps, formatSmall } from "./format.js";
import type { RunReport, Timing } from "./measure.js";

/**
 * Probabilities span many orders of magnitude: the attention map is drawn on a log scale from its maximum down four
 * decades (a uniform row over 2048 keys, 5e-4, still shows even when one row puts all its weight on one key).
 */
const ATTENTION_DECADES = 4;
/**
 * Error maps are linear and top out at this percentile of the visible cells (the legend gives the true maximum
 * beside it), so a few extreme cells do not turn the rest black.
 */
const ERROR_PERCENTILE = 0.995;

const DISTRIBUTION_NAMES: Record<string, string> = {
  gaussian: "Gaussian N(0, 1)",
  "k-bias": "Gaussian with a per-channel K bias of std 4 (the case K smoothing is for)",
  "heavy-tail": "heavy-tailed (Student-t-like)",
  sink: "a sink token every query attends to",
  constant: "constant rows",
};

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function setText(id: string, text: string, value?: number): void {
  const el = byId(id);
  el.textContent = text;
  if (value !== undefined) el.dataset.value = String(value);
}

function renderTiming(prefix: string, t: Timing): void {
  setText(`${prefix}-time`, `${formatMs(t.ms)}${t.runs > 1 ? ` (median of ${t.runs})` : ""}`, t.ms);
  setText(`${prefix}-tops`, formatOps(t.tops), t.tops);
  setText(`${prefix}-engine`, t.engine);
}

function renderLegend(name: string, palette: Palette, low: string, high: string): void {
  const el = document.querySelector<HTMLElement>(`[data-legend="${name}"]`)!;
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.style.background = cssGradient(palette);
  const lo = document.createElement("span");
  lo.textContent = low;
  const hi = document.createElement("span");
  hi.textContent = high;
  el.replaceChildren(lo, bar, hi);
}

function draw(canvasId: string, legend: string, grid: Grid, kind: "log" | "linear", palette: Palette): void {
  const max = gridMax(grid);
  const top = kind === "log" ? max : gridPercentile(grid, ERROR_PERCENTILE) || max;
  const scale: Scale = kind === "log" ? { kind, max: top, decades: ATTENTION_DECADES } : { kind, max: top };
  drawHeatmap(byId<HTMLCanvasElement>(canvasId), grid, scale, palette);
  const low = kind === "log" ? `≤ ${formatSmall(top / 10 ** ATTENTION_DECADES)}` : "0";
  const high = top < max ? `≥ ${formatSmall(top)} (max ${formatSmall(max)})` : formatSmall(max);
  renderLegend(legend, palette, low, high);
}

/** Draws the three maps of query head `head`. */
export function renderMaps(report: RunReport, head: number): void {
  const r = report.request;
  const sizes: MapSizes = {
    Hq: r.heads,
    Hkv: r.heads,
    Nq: r.tokens,
    Nk: r.tokens,
    D: r.headDim,
    causal: r.causal,
    smScale: 1 / Math.sqrt(r.headDim),
  };
  const exactP = exactAttentionMap(sizes, report.q, report.k, head);
  const sageP = sageAttentionMap(sizes, report.q, report.k, head);
  const pError = absDifference(sageP, exactP);
  const oError = outputError(sizes, report.sageOutput, report.exactOutput, head);
  draw("map-attention", "attention", exactP, "log", VIRIDIS);
  draw("map-p-error", "p-error", pError, "linear", INFERNO);
  draw("map-o-error", "o-error", oError, "linear", INFERNO);
}

/** Fills the page with a finished run: backend, rejections, times, accuracy and the maps of head 0. */
export function renderReport(report: RunReport): void {
  const name = byId("backend-name");
  name.textContent = report.backend;
  name.dataset.backend = report.backend;
  setText("backend-device", `on ${report.device}`);
  const r = report.request;
  setText(
    "problem",
    `Q, K, V: [B=1, H=${r.heads}, N=${r.tokens}, D=${r.headDim}] ${r.dtype}, ${DISTRIBUTION_NAMES[r.distribution]}` +
      `${r.causal ? ", causal" : ""}; output in ${r.dtype}.`,
  );

  byId("backend-details").replaceChildren(
    ...Object.entries(report.details).flatMap(([key, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }),
  );

  const list = byId("rejected");
  list.replaceChildren(
    ...report.rejected.map((x) => {
      const li = document.createElement("li");
      li.dataset.backend = x.backend;
      const code = document.createElement("code");
      code.textContent = x.backend;
      li.append("passed over ", code, ` — ${x.reason}: ${x.message}`);
      return li;
    }),
  );
  if (report.rejected.length === 0 && report.request.backend) {
    const li = document.createElement("li");
    li.textContent = "asked for explicitly, so no other backend was tried";
    list.append(li);
  }

  renderTiming("sage", report.sage);
  renderTiming("exact", report.exact);
  const a = report.accuracy;
  setText("metric-cosine", formatCosine(a.cosine), a.cosine);
  setText("metric-rel-l1", formatSmall(a.relL1), a.relL1);
  setText("metric-rmse", formatSmall(a.rmse), a.rmse);

  const select = byId<HTMLSelectElement>("head-select");
  select.replaceChildren(
    ...Array.from({ length: report.request.heads }, (_, h) => new Option(`${h} of ${report.request.heads}`, String(h))),
  );
  renderMaps(report, 0);
}
