import { copyFileSync, existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fromCanonicalF32, resolveProblem, runToPromise } from "@sageattn/core";
import { checkOutput, type CheckResult } from "@sageattn/core/conformance/check";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { renderSvg } from "./chart.js";
import { type Chromium, launchChromium } from "./chromium.js";
import { canvasStats, type PageResult, type PageRun, runOnPage } from "./page-driver.js";
import { appRoot, buildAndServe, type Served } from "./serve.js";
import type { RunReport } from "../src/measure.js";

/** SwiftShader WebGPU and single-core wasm on a 2-core CI box: small problems, generous waits. */
const RUN_TIMEOUT_MS = 120_000;

const resultsDir = join(appRoot, "test-results");
const screenshotPath = join(resultsDir, "page.png");
const readmeScreenshot = join(appRoot, "..", "..", "docs", "demo.png");

let served: Served | undefined;
let browser: Chromium | undefined;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(resultsDir, { recursive: true });
  served = await buildAndServe();
  browser = await launchChromium();
  page = await openDemo(browser, served.url, { hideWebGPU: false });
});

/** Opens the demo in a new tab and waits until it has probed the browser and loaded every backend. */
async function openDemo(chromium: Chromium, url: string, o: { hideWebGPU: boolean }): Promise<Page> {
  const tab = await chromium.context.newPage();
  tab.on("pageerror", (e) => pageErrors.push(e.message));
  tab.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`console: ${m.text()}`);
  });
  // A browser without WebGPU, as Firefox or Safari may be: navigator.gpu is absent before any page script runs.
  if (o.hideWebGPU) {
    await tab.addInitScript(() => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }));
  }
  await tab.goto(url);
  await tab.waitForFunction(() => document.querySelector("#environment .backends") !== null, undefined, {
    timeout: RUN_TIMEOUT_MS,
  });
  return tab;
}

afterAll(async () => {
  await browser?.close();
  await served?.close();
});

/**
 * The page's last run judged here by core's `checkOutput` (docs/DESIGN.md §2, "Accuracy"): its output against the
 * sage oracle of the P·V mode of the backend that ran, against exact attention, and for rows without keys.
 */
async function judgeLastRun(tab: Page, run: PageRun): Promise<CheckResult> {
  const last = await tab.evaluate(() => {
    const r = (window as unknown as { sageattnLastRun: RunReport }).sageattnLastRun;
    return {
      capabilities: r.capabilities,
      q: Array.from(r.q),
      k: Array.from(r.k),
      v: Array.from(r.v),
      output: Array.from(r.sageOutput),
    };
  });
  const [q, k, v] = [last.q, last.k, last.v].map((x) => Float32Array.from(x));
  const dims = { B: 1, H: run.heads, N: run.tokens, D: run.headDim };
  const tensor = (x: Float32Array) => fromCanonicalF32(x, dims, run.dtype, "HND");
  const problem = await runToPromise(resolveProblem(tensor(q), tensor(k), tensor(v), { causal: run.causal }));
  return checkOutput({
    problem,
    q,
    k,
    v,
    output: Float32Array.from(last.output),
    capabilities: last.capabilities,
    exact: run.distribution === "heavy-tail" ? "heavy-tail" : "normal",
  });
}

/** Core's verdict on the page's last run, and the page showing the accuracy core measured against exact. */
async function expectAccurate(tab: Page, run: PageRun, r: PageResult, name: string): Promise<void> {
  const judged = await judgeLastRun(tab, run);
  expect(judged.failures, `${name}: checkOutput (rel-L1 vs sage ${judged.vsSage.relL1}, ${judged.pvOracle})`).toEqual(
    [],
  );
  expect(r.cosine, `${name}: the page's cosine`).toBeCloseTo(judged.vsExact!.cosine, 5);
  expect(r.relL1, `${name}: the page's rel-L1`).toBeCloseTo(judged.vsExact!.relL1, 5);
}

/** Runs one configuration (on the main tab unless given another) and checks everything the page reports about it. */
async function checkRun(run: PageRun, tab: Page = page): Promise<void> {
  const name = `${run.backend} H=${run.heads} N=${run.tokens} D=${run.headDim} ${run.dtype} ${run.distribution}${
    run.causal ? " causal" : ""
  }${tab === page ? "" : ` (${new URL(tab.url()).search})`}`;
  const r = await runOnPage(tab, run, RUN_TIMEOUT_MS);
  console.info(
    `${name} → ${r.backend}: cosine ${r.cosine.toFixed(6)}, rel-L1 ${r.relL1.toExponential(2)}, RMSE ${
      r.rmse.toExponential(2)
    }, sage ${r.sageMs.toFixed(1)} ms, exact ${r.exactMs.toFixed(1)} ms`,
  );
  expect(r.state, `${name}: ${r.status}`).toBe("done");
  if (run.backend !== "auto") expect(r.backend, `${name}: backend that ran`).toBe(run.backend);
  await expectAccurate(tab, run, r, name);
  expect(r.relL1, `${name}: rel-L1`).toBeGreaterThan(0); // an INT8 kernel that matches exact to the bit is not running INT8
  expect(Number.isFinite(r.rmse) && r.rmse > 0, `${name}: RMSE ${r.rmse}`).toBe(true);
  expect(r.sageMs, `${name}: SageAttention time`).toBeGreaterThan(0);
  expect(r.exactMs, `${name}: exact time`).toBeGreaterThan(0);
  // Attention maps are queries × keys, the output error queries × channels (one canvas pixel per cell up to 512).
  const mapSizes = { "map-attention": run.tokens, "map-p-error": run.tokens, "map-o-error": run.headDim };
  for (const [id, cols] of Object.entries(mapSizes)) {
    const s = await canvasStats(tab, `#${id}`);
    expect([s.width, s.height], `${name}: ${id} size`).toEqual([Math.min(cols, 512), Math.min(run.tokens, 512)]);
    if (run.distribution === "sink") continue; // every row attends to the sink key alone: near-uniform maps
    expect(s.distinctColours, `${name}: ${id} colours`).toBeGreaterThan(16);
    expect(s.differentFromFirst, `${name}: ${id} share of pixels unlike the first`).toBeGreaterThan(0.1);
  }
  expect(pageErrors, `${name}: errors in the page`).toEqual([]);
}

describe("browser demo in headless Chromium", () => {
  test("the page says what the browser offers and which backends load", async () => {
    const text = (await page.textContent("#environment")) ?? "";
    expect(text).toContain("WebGPU:");
    // Chromium here has a SwiftShader WebGPU adapter and relaxed SIMD; the page must find both backends usable.
    expect(text).toMatch(/webgpu ✓/);
    expect(text).toMatch(/cpu-simd ✓/);
    expect(text).toMatch(/cuda ✗/);
  });

  // The run each backend's test starts with (on webgpu every variant keeps D and dtype: SwiftShader compiles each new
  // pipeline for tens of seconds).
  const kBiasRun = (backend: PageRun["backend"]): PageRun => ({
    backend,
    heads: 2,
    tokens: 160,
    headDim: 64,
    causal: false,
    dtype: "f16",
    distribution: "k-bias",
  });
  const webgpuRun = kBiasRun("webgpu");

  test("webgpu (SwiftShader, f32 path) matches exact attention", async () => {
    await checkRun(webgpuRun);
    // Causal with a partial last tile.
    await checkRun({ ...webgpuRun, tokens: 96, causal: true, distribution: "gaussian" });
  });

  test("webgpu with subgroup row maxima (?subgroups, SwiftShader's 4-lane subgroups) matches exact attention", async () => {
    const tab = await openDemo(browser!, `${served!.url}?subgroups`, { hideWebGPU: false });
    try {
      await checkRun(webgpuRun, tab);
      // Causal, and a sink key (logits ≈ 30) in tx 0's lane of the first tile: a row maximum that left it out would
      // overflow the f16 P (the f16-block P·V mode) instead of only shifting the softmax.
      await checkRun({ ...webgpuRun, tokens: 96, causal: true, distribution: "sink" }, tab);
      // The variant ran: the backend that served the run passed the subgroup check (else it says "off: why").
      const details = await tab.evaluate(() =>
        (window as unknown as { sageattnLastRun: RunReport }).sageattnLastRun.details
      );
      expect(details.subgroups, "webgpu details.subgroups").toMatch(/^on \(.*\d+ lanes in the check/);
      expect(await tab.textContent("#environment")).toContain(`webgpu subgroups: ${details.subgroups}`);
      console.info(`webgpu subgroups: ${details.subgroups}`);
    } finally {
      await tab.close();
    }
  });

  test("cpu-simd (WebAssembly) matches exact attention", async () => {
    const run = kBiasRun("cpu-simd");
    await checkRun(run);
    await checkRun({ ...run, tokens: 96, headDim: 128, causal: true, dtype: "f32", distribution: "gaussian" });
  });

  test("auto picks the best backend, lists the others it passed over, and the page is screenshotted", async () => {
    const run: PageRun = {
      backend: "auto",
      heads: 4,
      tokens: 256,
      headDim: 64,
      causal: true,
      dtype: "f16",
      distribution: "k-bias",
    };
    const r = await runOnPage(page, run, RUN_TIMEOUT_MS);
    expect(r.state, r.status).toBe("done");
    // SwiftShader is a software adapter: webgpu ranks below cpu-simd there (still run above when named).
    expect(r.backend).toBe("cpu-simd");
    expect(r.rejected).toEqual(expect.arrayContaining(["cuda", "webgpu"]));
    expect(await page.textContent('#rejected li[data-backend="webgpu"]')).toMatch(/Software/);
    await expectAccurate(page, run, r, "auto");
    await page.screenshot({ path: screenshotPath, fullPage: true });
    expect(statSync(screenshotPath).size).toBeGreaterThan(20_000);
    // The README's copy is refreshed on request only, so a test run leaves the tracked tree as it was.
    if (process.env.SAGEATTN_UPDATE_SCREENSHOT) {
      mkdirSync(join(readmeScreenshot, ".."), { recursive: true });
      copyFileSync(screenshotPath, readmeScreenshot);
    }
  });

  test("without WebGPU, auto falls back to cpu-simd and says why webgpu was passed over", async () => {
    const tab = await openDemo(browser!, served!.url, { hideWebGPU: true });
    try {
      expect(await tab.textContent("#environment")).toContain("WebGPU: no navigator.gpu");
      const run: PageRun = {
        backend: "auto",
        heads: 2,
        tokens: 128,
        headDim: 64,
        causal: false,
        dtype: "f16",
        distribution: "k-bias",
      };
      const r = await runOnPage(tab, run, RUN_TIMEOUT_MS);
      expect(r.state, r.status).toBe("done");
      expect(r.backend).toBe("cpu-simd");
      expect(r.rejected).toEqual(expect.arrayContaining(["webgpu", "cuda"]));
      const reason = await tab.textContent('#rejected li[data-backend="webgpu"]');
      expect(reason, "the page says why webgpu was passed over").toMatch(/NoDevice|FeatureMissing|NotInstalled/);
      await expectAccurate(tab, run, r, "auto without WebGPU");
      expect(pageErrors).toEqual([]);
    } finally {
      await tab.close();
    }
  });

  const chart = process.env.SAGEATTN_CHART_SVG;
  test.skipIf(!chart)("the benchmark chart (SAGEATTN_CHART_SVG) renders", async () => {
    expect(existsSync(chart!), `${chart} exists`).toBe(true);
    const r = await renderSvg(browser!.context, chart!, join(resultsDir, "chart.png"));
    expect(r.loaded, "the SVG decodes as an image").toBe(true);
    expect(r.width).toBeGreaterThan(100);
    expect(r.height).toBeGreaterThan(100);
    expect(r.inked, "share of the chart that is drawn on").toBeGreaterThan(0.01);
    expect(r.distinctColours, "colours in the chart").toBeGreaterThan(3);
  });
});
