import { readFileSync } from "node:fs";
import type { BrowserContext } from "playwright-core";

export interface ChartRender {
  /** The SVG decoded as an image (an invalid SVG fails to load). */
  readonly loaded: boolean;
  readonly width: number;
  readonly height: number;
  /** Share of pixels that are neither white nor transparent once drawn. */
  readonly inked: number;
  readonly distinctColours: number;
}

/** Loads an SVG file as an <img> in a fresh tab, saves a screenshot of it, and measures how much it drew. */
export async function renderSvg(
  context: BrowserContext,
  svgPath: string,
  screenshotPath: string,
): Promise<ChartRender> {
  const svg = readFileSync(svgPath);
  const page = await context.newPage();
  try {
    await page.setContent('<body style="margin:0;background:#fff"><img id="chart" alt="chart"></body>');
    const result = await page.evaluate(async (src) => {
      const img = document.getElementById("chart") as HTMLImageElement;
      const loaded = await new Promise<boolean>((resolve) => {
        img.onload = () => resolve(true);
        img.onerror = () => resolve(false);
        img.src = src;
      });
      if (!loaded) return { loaded, width: 0, height: 0, inked: 0, distinctColours: 0 };
      const width = img.naturalWidth || img.width;
      const height = img.naturalHeight || img.height;
      const canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      const ctx = canvas.getContext("2d")!;
      ctx.drawImage(img, 0, 0, width, height);
      const px = ctx.getImageData(0, 0, width, height).data;
      let inked = 0;
      const colours = new Set<number>();
      for (let i = 0; i < px.length; i += 4) {
        const blank = px[i + 3] === 0 || (px[i] === 255 && px[i + 1] === 255 && px[i + 2] === 255);
        if (!blank) inked++;
        if (colours.size < 4096) colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
      }
      return { loaded, width, height, inked: inked / Math.max(1, width * height), distinctColours: colours.size };
    }, `data:image/svg+xml;base64,${svg.toString("base64")}`);
    await page.locator("#chart").screenshot({ path: screenshotPath });
    return result;
  } finally {
    await page.close();
  }
}
