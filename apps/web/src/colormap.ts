/** A colour map: evenly spaced anchor colours, linearly interpolated. */
export interface Palette {
  readonly name: string;
  readonly anchors: readonly (readonly [number, number, number])[];
}

const hex = (
  s: string,
): [number, number, number] => [parseInt(s.slice(1, 3), 16), parseInt(s.slice(3, 5), 16), parseInt(s.slice(5, 7), 16)];

/** Perceptually ordered dark-blue → green → yellow (the viridis stops): for probabilities. */
export const VIRIDIS: Palette = {
  name: "viridis",
  anchors: ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"].map(hex),
};

/** Black → red → pale yellow (the inferno stops): for errors, so they never read as probabilities. */
export const INFERNO: Palette = {
  name: "inferno",
  anchors: ["#000004", "#57106e", "#bc3754", "#f98e09", "#fcffa4"].map(hex),
};

/** Colour for t in [0, 1] (clamped), written into `out` at `offset` as RGBA. */
export function paint(p: Palette, t: number, out: Uint8ClampedArray, offset: number): void {
  const a = p.anchors;
  const x = Math.min(1, Math.max(0, t)) * (a.length - 1);
  const i = Math.min(a.length - 2, Math.floor(x));
  const f = x - i;
  for (let c = 0; c < 3; c++) out[offset + c] = a[i][c] + (a[i + 1][c] - a[i][c]) * f;
  out[offset + 3] = 255;
}

/** A CSS linear-gradient through the palette, for the legend bar. */
export function cssGradient(p: Palette): string {
  return `linear-gradient(to right, ${p.anchors.map(([r, g, b]) => `rgb(${r} ${g} ${b})`).join(", ")})`;
}
