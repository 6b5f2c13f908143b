import { paint, type Palette } from "./colormap.js";

/** A row-major grid of values; NaN marks a cell that does not exist (a key hidden by causality). */
export interface Grid {
  readonly rows: number;
  readonly cols: number;
  readonly values: Float64Array;
}

/** How values map onto the palette: linear over [0, max], or logarithmic over `decades` below max. */
export type Scale = { readonly kind: "linear"; readonly max: number } | {
  readonly kind: "log";
  readonly max: number;
  readonly decades: number;
};

/** Largest side of a drawn heatmap in canvas pixels; bigger grids are reduced by taking each block's maximum. */
const MAX_SIDE = 512;
/** Colour of cells that do not exist (masked keys): the page background, so the causal triangle reads as empty. */
const HIDDEN_RGB = [246, 247, 249] as const;

function position(scale: Scale, v: number): number {
  if (scale.max <= 0) return 0;
  if (scale.kind === "linear") return v / scale.max;
  if (v <= 0) return 0;
  return 1 + Math.log10(v / scale.max) / scale.decades;
}

/**
 * Draws `grid` into `canvas` (one canvas pixel per cell, or per block of cells for large grids; block maximum,
 * so a single large error is never averaged away). The canvas is then stretched by CSS with pixelated rendering.
 */
export function drawHeatmap(canvas: HTMLCanvasElement, grid: Grid, scale: Scale, palette: Palette): void {
  const fy = Math.ceil(grid.rows / MAX_SIDE);
  const fx = Math.ceil(grid.cols / MAX_SIDE);
  const h = Math.ceil(grid.rows / fy);
  const w = Math.ceil(grid.cols / fx);
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new Error("this browser gives no 2D canvas context");
  const image = ctx.createImageData(w, h);
  const px = image.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let best = NaN;
      for (let r = y * fy; r < Math.min(grid.rows, (y + 1) * fy); r++) {
        for (let c = x * fx; c < Math.min(grid.cols, (x + 1) * fx); c++) {
          const v = grid.values[r * grid.cols + c];
          if (!Number.isNaN(v) && !(v <= best)) best = v; // NaN best: the first visible cell wins
        }
      }
      const o = (y * w + x) * 4;
      if (Number.isNaN(best)) {
        px.set(HIDDEN_RGB, o);
        px[o + 3] = 255;
      } else paint(palette, position(scale, best), px, o);
    }
  }
  ctx.putImageData(image, 0, 0);
}

/** Largest value of a grid, ignoring hidden cells (0 for an empty grid). */
export function gridMax(grid: Grid): number {
  let m = 0;
  for (const v of grid.values) if (v > m) m = v;
  return m;
}

/** Values sampled for a percentile: enough to be exact to a fraction of a percent, few enough to sort at once. */
const PERCENTILE_SAMPLES = 200_000;

/**
 * The value below which a share `q` of the visible cells lie. Colour scales top out there rather than at the maximum,
 * so a handful of extreme cells (the first causal rows, where one key takes all the weight) do not darken the rest.
 */
export function gridPercentile(grid: Grid, q: number): number {
  const step = Math.max(1, Math.floor(grid.values.length / PERCENTILE_SAMPLES));
  const sample: number[] = [];
  for (let i = 0; i < grid.values.length; i += step) if (!Number.isNaN(grid.values[i])) sample.push(grid.values[i]);
  if (sample.length === 0) return 0;
  sample.sort((a, b) => a - b);
  return sample[Math.min(sample.length - 1, Math.floor(q * sample.length))];
}
