/**
 * `sageattn bench --chart out.svg`: throughput per sequence length for every backend and peer, as a self-contained SVG
 * (no scripts, no external fonts or styles) that renders the same in a browser, on GitHub and in an image viewer.
 * One panel per shape family (head dim, causality, …) when a grid has several, sharing axes, colors and one legend.
 */
import { type BenchCase, type CaseResult, isTiming } from "./types.js";

export interface ChartPoint {
  readonly n: number;
  readonly tops: number;
}

export interface ChartSeries {
  /** The implementation: the same name means the same color in every panel. */
  readonly name: string;
  /** ours: solid and thick; exact: our exact kernel, dashed; peer: thin. */
  readonly kind: "ours" | "exact" | "peer";
  readonly points: readonly ChartPoint[];
}

export interface ChartPanel {
  /** The shape family ("B4 H32 D128 f16 causal"); empty when there is one panel. */
  readonly title: string;
  readonly series: readonly ChartSeries[];
}

/** Panel size: one large panel alone, smaller ones two to a row. */
const SINGLE = { w: 600, h: 340 };
const MULTI = { w: 420, h: 270 };
const M = { left: 84, top: 78, bottom: 62, gapX: 56, gapY: 84, legend: 290 };
const COLORS = [
  "#d62728",
  "#1f77b4",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#7f7f7f",
  "#bcbd22",
];

const familyOf = (c: BenchCase) => `B${c.B} H${c.H} D${c.D} ${c.dtype}${c.causal ? " causal" : ""}`;

/** Panels by shape family, each with one series per implementation, points sorted by N. */
export function panelsFrom(results: readonly CaseResult[]): ChartPanel[] {
  const families = new Map<string, Map<string, { kind: ChartSeries["kind"]; points: ChartPoint[] }>>();
  const add = (family: string, name: string, kind: ChartSeries["kind"], n: number, tops: number) => {
    const panel = families.get(family) ?? new Map();
    families.set(family, panel);
    const s = panel.get(name) ?? { kind, points: [] };
    s.points.push({ n, tops });
    panel.set(name, s);
  };
  for (const r of results) {
    const f = familyOf(r.case);
    for (const b of r.backends) {
      if (isTiming(b.ours)) add(f, `${b.backend} sage (ours)`, "ours", r.case.N, b.ours.tops);
      if (isTiming(b.exact)) add(f, `${b.backend} exact kernel`, "exact", r.case.N, b.exact.tops);
    }
    for (const p of r.peers) if (p.status === "ok") add(f, p.peer, "peer", r.case.N, p.timing.tops);
  }
  const single = families.size === 1;
  return [...families].map(([family, series]) => ({
    title: single ? "" : family,
    series: [...series].map(([name, s]) => ({ name, kind: s.kind, points: s.points.sort((a, b) => a.n - b.n) })),
  }));
}

export const escapeXml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);

/** A round axis maximum at or above `x` (1, 2, 2.5, 5 × 10^k). */
export function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

const nLabel = (n: number) => (n >= 1024 && n % 1024 === 0 ? `${n / 1024}K` : String(n));
const num = (x: number) => (Math.round(x * 10) / 10).toString();

/** The SVG text. `title` is the heading, `subtitle` (the machine) the line under it. */
export function renderChart(panels: readonly ChartPanel[], title: string, subtitle: string): string {
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.points));
  const maxTops = Math.max(0, ...all.map((p) => p.tops));
  const giga = maxTops < 1;
  const scale = giga ? 1e3 : 1;
  const unit = giga ? "GOPS" : "TOPS";
  const yMax = niceMax(maxTops * scale * 1.05);
  const logs = all.map((p) => Math.log2(p.n));
  let x0 = Math.floor(Math.min(...logs, Infinity));
  let x1 = Math.ceil(Math.max(...logs, -Infinity));
  if (!Number.isFinite(x0)) [x0, x1] = [9, 11];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  const pad = 0.25; // a quarter octave each side, so end points do not sit on the axes

  const names: Array<{ name: string; kind: ChartSeries["kind"] }> = [];
  for (const p of panels) {
    for (const s of p.series) if (!names.some((x) => x.name === s.name)) names.push({ name: s.name, kind: s.kind });
  }
  const colorOf = (name: string) => COLORS[names.findIndex((x) => x.name === name) % COLORS.length];
  const dashOf = (kind: ChartSeries["kind"]) => (kind === "exact" ? ` stroke-dasharray="7 4"` : "");
  const widthOf = (kind: ChartSeries["kind"]) => (kind === "ours" ? 3 : kind === "exact" ? 2 : 1.6);

  const top = panels.some((p) => p.title) ? M.top + 28 : M.top; // room for panel titles under the subtitle
  const count = Math.max(1, panels.length);
  const { w: PANEL_W, h: PANEL_H } = count === 1 ? SINGLE : MULTI;
  const cols = count === 1 ? 1 : 2;
  const rows = Math.ceil(count / cols);
  const W = M.left + cols * PANEL_W + (cols - 1) * M.gapX + 36 + M.legend;
  const H = Math.max(top + rows * PANEL_H + (rows - 1) * M.gapY + M.bottom, top + names.length * 22 + 70);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
  );
  parts.push(`<title>${escapeXml(`${title} — ${subtitle}`)}</title>`);
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<text x="${M.left}" y="30" font-size="18" font-weight="bold" fill="#222">${escapeXml(title)}</text>`);
  parts.push(`<text x="${M.left}" y="52" font-size="13" fill="#555">${escapeXml(subtitle)}</text>`);

  panels.forEach((panel, i) => {
    const ox = M.left + (i % cols) * (PANEL_W + M.gapX);
    const oy = top + Math.floor(i / cols) * (PANEL_H + M.gapY);
    const px = (n: number) => ox + ((Math.log2(n) - x0 + pad) / (x1 - x0 + 2 * pad)) * PANEL_W;
    const py = (t: number) => oy + PANEL_H - ((t * scale) / yMax) * PANEL_H;
    parts.push(`<g class="panel" data-title="${escapeXml(panel.title)}">`);
    if (panel.title) {
      parts.push(
        `<text x="${ox + PANEL_W / 2}" y="${
          oy - 10
        }" text-anchor="middle" font-size="14" font-weight="bold" fill="#333">${escapeXml(panel.title)}</text>`,
      );
    }
    parts.push(`<g class="grid" stroke="#e3e3e3" stroke-width="1">`);
    const yTicks = 5;
    for (let t = 0; t <= yTicks; t++) {
      parts.push(
        `<line x1="${ox}" y1="${num(oy + PANEL_H - (t / yTicks) * PANEL_H)}" x2="${ox + PANEL_W}" y2="${
          num(oy + PANEL_H - (t / yTicks) * PANEL_H)
        }"/>`,
      );
    }
    for (let e = x0; e <= x1; e++) {
      parts.push(`<line x1="${num(px(2 ** e))}" y1="${oy}" x2="${num(px(2 ** e))}" y2="${oy + PANEL_H}"/>`);
    }
    parts.push(`</g>`);
    parts.push(`<g class="axes" fill="#333">`);
    parts.push(`<line x1="${ox}" y1="${oy + PANEL_H}" x2="${ox + PANEL_W}" y2="${oy + PANEL_H}" stroke="#333"/>`);
    parts.push(`<line x1="${ox}" y1="${oy}" x2="${ox}" y2="${oy + PANEL_H}" stroke="#333"/>`);
    for (let t = 0; t <= yTicks; t++) {
      parts.push(
        `<text x="${ox - 8}" y="${num(oy + PANEL_H - (t / yTicks) * PANEL_H + 4)}" text-anchor="end">${
          escapeXml(String(+((t / yTicks) * yMax).toPrecision(4)))
        }</text>`,
      );
    }
    for (let e = x0; e <= x1; e++) {
      parts.push(`<text x="${num(px(2 ** e))}" y="${oy + PANEL_H + 20}" text-anchor="middle">${nLabel(2 ** e)}</text>`);
    }
    parts.push(
      `<text x="${ox + PANEL_W / 2}" y="${
        oy + PANEL_H + 42
      }" text-anchor="middle" font-size="13">sequence length N (log₂ scale)</text>`,
    );
    parts.push(
      `<text transform="translate(${ox - 56} ${
        oy + PANEL_H / 2
      }) rotate(-90)" text-anchor="middle" font-size="13">${unit}</text>`,
    );
    parts.push(`</g>`);
    for (const s of panel.series) {
      const color = colorOf(s.name);
      const pts = s.points.map((p) => `${num(px(p.n))},${num(py(p.tops))}`).join(" ");
      parts.push(`<g class="series" data-name="${escapeXml(s.name)}" stroke="${color}" fill="${color}">`);
      parts.push(`<polyline points="${pts}" fill="none" stroke-width="${widthOf(s.kind)}"${dashOf(s.kind)}/>`);
      for (const p of s.points) {
        parts.push(
          `<circle cx="${num(px(p.n))}" cy="${num(py(p.tops))}" r="${s.kind === "ours" ? 4 : 3}"><title>${
            escapeXml(
              `${s.name}${panel.title ? ` · ${panel.title}` : ""}: N=${p.n}, ${+(p.tops * scale).toPrecision(
                4,
              )} ${unit}`,
            )
          }</title></circle>`,
        );
      }
      parts.push(`</g>`);
    }
    parts.push(`</g>`);
  });

  const lx = M.left + cols * PANEL_W + (cols - 1) * M.gapX + 36;
  parts.push(`<g class="legend" font-size="12">`);
  names.forEach((s, i) => {
    const y = top + 8 + i * 22;
    parts.push(
      `<line x1="${lx}" y1="${y}" x2="${lx + 26}" y2="${y}" stroke="${colorOf(s.name)}" stroke-width="${
        s.kind === "ours" ? 3 : 2
      }"${dashOf(s.kind)}/>`,
    );
    parts.push(`<text x="${lx + 34}" y="${y + 4}" fill="#222">${escapeXml(s.name)}</text>`);
  });
  const noteY = top + 8 + names.length * 22 + 12;
  parts.push(`<text x="${lx}" y="${noteY}" fill="#555" font-size="11">${unit} = 4·B·H·N²·D / t (÷2 causal),</text>`);
  parts.push(
    `<text x="${lx}" y="${noteY + 15}" fill="#555" font-size="11">t end to end (quantization included)</text>`,
  );
  if (names.length === 0) parts.push(`<text x="${lx}" y="${top + 12}" fill="#a00">no successful runs</text>`);
  parts.push(`</g>`);
  parts.push(`</svg>`);
  return parts.join("\n") + "\n";
}
