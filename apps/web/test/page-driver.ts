import type { Page } from "playwright-core";

/** The form's fields, as a person would set them. */
export interface PageRun {
  readonly backend: "auto" | "webgpu" | "cpu-simd" | "js";
  readonly heads: number;
  readonly tokens: number;
  readonly headDim: 32 | 64 | 128;
  readonly causal: boolean;
  readonly dtype: "f16" | "bf16" | "f32";
  readonly distribution: "gaussian" | "k-bias" | "heavy-tail" | "sink";
}

/** What the page shows after a run, read from the DOM. */
export interface PageResult {
  readonly state: string;
  readonly status: string;
  readonly backend: string;
  readonly rejected: string[];
  readonly cosine: number;
  readonly relL1: number;
  readonly rmse: number;
  readonly sageMs: number;
  readonly exactMs: number;
  readonly sageEngine: string;
}

/** Fills the form, presses Run and waits until the page reports this run finished (done or failed). */
export async function runOnPage(page: Page, run: PageRun, timeoutMs: number): Promise<PageResult> {
  const before = Number((await page.getAttribute("#result", "data-runs")) ?? 0);
  await page.fill('input[name="heads"]', String(run.heads));
  await page.fill('input[name="tokens"]', String(run.tokens));
  await page.selectOption('select[name="headDim"]', String(run.headDim));
  await page.selectOption('select[name="dtype"]', run.dtype);
  await page.selectOption('select[name="distribution"]', run.distribution);
  await page.setChecked('input[name="causal"]', run.causal);
  await page.selectOption('select[name="backend"]', run.backend);
  await page.click("#run");
  await page.waitForFunction((n) => Number(document.getElementById("result")?.dataset.runs ?? 0) > n, before, {
    timeout: timeoutMs,
  });
  return page.evaluate(() => {
    const text = (id: string) => document.getElementById(id)?.textContent ?? "";
    const value = (id: string) => Number(document.getElementById(id)?.dataset.value ?? NaN);
    return {
      state: document.getElementById("result")?.dataset.state ?? "",
      status: text("status"),
      backend: document.getElementById("backend-name")?.dataset.backend ?? "",
      rejected: [...document.querySelectorAll<HTMLElement>("#rejected li[data-backend]")].map((li) =>
        li.dataset.backend ?? ""
      ),
      cosine: value("metric-cosine"),
      relL1: value("metric-rel-l1"),
      rmse: value("metric-rmse"),
      sageMs: value("sage-time"),
      exactMs: value("exact-time"),
      sageEngine: text("sage-engine"),
    };
  });
}

/** How varied a canvas's pixels are: its size, distinct colours (capped) and the share of pixels unlike the first. */
export interface CanvasStats {
  readonly width: number;
  readonly height: number;
  readonly distinctColours: number;
  readonly differentFromFirst: number;
}

export function canvasStats(page: Page, selector: string): Promise<CanvasStats> {
  return page.$eval(selector, (el) => {
    const canvas = el as HTMLCanvasElement;
    const { width, height } = canvas;
    const px = canvas.getContext("2d")!.getImageData(0, 0, width, height).data;
    const colours = new Set<number>();
    let different = 0;
    for (let i = 0; i < px.length; i += 4) {
      const rgb = (px[i] << 16) | (px[i + 1] << 8) | px[i + 2];
      if (colours.size < 4096) colours.add(rgb);
      if (px[i] !== px[0] || px[i + 1] !== px[1] || px[i + 2] !== px[2]) different++;
    }
    return {
      width,
      height,
      distinctColours: colours.size,
      differentFromFirst: different / Math.max(1, width * height),
    };
  });
}
