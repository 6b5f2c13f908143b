// A plain install of @sageattn/core and @sageattn/backend-cpu-simd: core discovers the backend by itself.
import { BOUNDS } from "@sageattn/core";
import { afterAll, describe, expect, inject, it } from "vitest";
import { bin } from "./packages.js";
import { folderBytes, installProject, type Ran } from "./project.js";

const tarballs = inject("tarballs");
const closure = inject("effectClosure");
const project = installProject(
  "core-cpu",
  ["@sageattn/core", "@sageattn/backend-cpu-simd", ...closure].map((n) => tarballs[n]),
);
afterAll(() => project.remove());

function expectCpuSimd(r: Ran) {
  expect(r.signal, `killed after the timeout (did not exit by itself?)\n${r.stderr}`).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  expect(r.result?.backend).toBe("cpu-simd");
  expect(r.result!.cosine).toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
  expect(r.result!.relL1).toBeLessThanOrEqual(BOUNDS.exact.maxRelL1);
}

describe("core + cpu-simd from tarballs", () => {
  it("adds under 2 MB beyond effect and its own dependencies", () => {
    const nm = `${project.dir}/node_modules`;
    const effect = closure.reduce((sum, n) => sum + folderBytes(`${nm}/${n}`), 0);
    const ours = folderBytes(nm) - effect;
    expect(effect).toBeGreaterThan(10e6); // the measurement sees effect at all
    expect(ours).toBeGreaterThan(100e3);
    expect(ours).toBeLessThan(2 * 1024 * 1024);
  });

  it("Node runs the README example on cpu-simd and exits by itself", () =>
    expectCpuSimd(project.run("node", ["with-core.mjs"])));

  it("Bun runs it on cpu-simd and exits by itself", () => expectCpuSimd(project.run(bin("bun"), ["with-core.mjs"])));

  it("Deno runs it on cpu-simd and exits by itself", () =>
    expectCpuSimd(project.run(bin("deno"), ["run", "-A", "with-core.mjs"])));
});
