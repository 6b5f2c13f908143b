// The sageattn package with every backend and the CLI, from tarballs: sizes, and the README example under Node,
// Bun, Deno, a browser bundle in headless Chromium and workerd, each asserting the backend that ran and its accuracy.
import { BOUNDS } from "@sageattn/core";
import { existsSync } from "node:fs";
import { afterAll, describe, expect, inject, it } from "vitest";
import { runInChromium } from "./browser.js";
import { bin, PUBLISHED } from "./packages.js";
import { type ExampleResult, folderBytes, installProject, type Ran } from "./project.js";
import { workerdConfig } from "./workerd.js";

const tarballs = inject("tarballs");
const closure = inject("effectClosure");
const project = installProject("all", [...Object.keys(PUBLISHED), ...closure].map((n) => tarballs[n]));
afterAll(() => project.remove());

function expectAccurate(r: ExampleResult | undefined) {
  expect(r?.cosine).toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
  expect(r!.relL1).toBeLessThanOrEqual(BOUNDS.exact.maxRelL1);
}

function expectRan(r: Ran) {
  expect(r.signal, `killed after the timeout (did not exit by itself?)\n${r.stderr}`).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  expectAccurate(r.result);
}

describe("sageattn, every backend and the CLI, from tarballs", () => {
  it("installs under 80 MB in all, without Dawn or bench peers", () => {
    const nm = `${project.dir}/node_modules`;
    for (const heavy of ["webgpu", "bun-webgpu", "onnxruntime-node", "onnxruntime-web", "@tensorflow/tfjs-core"]) {
      expect(existsSync(`${nm}/${heavy}`), heavy).toBe(false);
    }
    const bytes = folderBytes(nm);
    expect(bytes).toBeGreaterThan(10e6);
    expect(bytes).toBeLessThan(80 * 1024 * 1024);
  });

  it("the CLI answers --version", () => {
    const r = project.run("node", ["node_modules/.bin/sageattn", "--version"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("0.1.0");
  });

  it("Node: the node entry runs on cpu-simd and exits by itself", () => {
    const r = project.run("node", ["with-sageattn.mjs"]);
    expectRan(r);
    expect(r.result?.backend).toBe("cpu-simd");
  });

  it("Bun: the bun entry runs on cpu-simd and exits by itself", () => {
    const r = project.run(bin("bun"), ["with-sageattn.mjs"]);
    expectRan(r);
    expect(r.result?.backend).toBe("cpu-simd");
  });

  it("Deno: cpu-simd is chosen over WebGPU on a fallback (software) adapter", () => {
    const r = project.run(bin("deno"), ["run", "-A", "with-sageattn.mjs"]);
    expectRan(r);
    expect(r.result?.backend).toBe("cpu-simd");
    // CI installs Mesa's lavapipe: Deno's only adapter is a fallback one, which must be passed over as Software.
    expect(r.result?.rejected).toContain("webgpu: Software");
  });

  it("a browser bundle (bun build --target=browser) runs on webgpu or cpu-simd in headless Chromium, never js", async () => {
    const b = project.run(bin("bun"), ["build", "browser-page.mjs", "--target=browser", "--outdir", "out-browser"]);
    expect(b.status, b.stderr).toBe(0);
    const r = await runInChromium(`${project.dir}/out-browser`);
    expect(r.error).toBeUndefined();
    expect(["webgpu", "cpu-simd"]).toContain(r.backend);
    expectAccurate(r);
  });

  it("workerd: the workerd entry runs on cpu-simd from precompiled wasm and exits by itself", () => {
    const b = project.run(bin("bun"), [
      "build",
      "worker.mjs",
      "--target=browser",
      "--conditions=workerd",
      "--external",
      "*.wasm",
      "--outdir",
      "out",
    ]);
    expect(b.status, b.stderr).toBe(0);
    const r = project.run(bin("workerd"), ["test", workerdConfig(project.dir)]);
    expectRan(r);
    expect(r.result?.backend).toBe("cpu-simd");
  });
});
