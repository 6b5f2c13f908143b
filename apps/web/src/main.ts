import { loadBackend, registerBackend, runToPromise } from "@sageattn/core";
import { provider as webgpuProvider } from "@sageattn/backend-webgpu";
import { provider as cpuSimdProvider } from "@sageattn/backend-cpu-simd";
import { backendLines, probeBrowser } from "./environment.js";
import { readRequest } from "./form.js";
import { measure, type RunReport } from "./measure.js";
import { renderMaps, renderReport } from "./render.js";

// A bundle cannot discover packages at run time, so the page registers the browser backends itself.
registerBackend(webgpuProvider);
registerBackend(cpuSimdProvider);

// `?subgroups` in the address: the webgpu backend asked for the subgroup variant of its reductions (opt-in in the
// package, `details.subgroups` says whether it is on). The browser test runs it on SwiftShader's subgroups. A
// failure here shows as webgpu's line in the environment (the next load tries again without options).
const subgroupsAsked = new URLSearchParams(location.search).has("subgroups");
const configured: Promise<unknown> = subgroupsAsked
  ? runToPromise(loadBackend("webgpu", { subgroups: true })).catch(() => undefined)
  : Promise.resolve();

const form = document.getElementById("controls") as HTMLFormElement;
const button = document.getElementById("run") as HTMLButtonElement;
const result = document.getElementById("result") as HTMLElement;
const status = document.getElementById("status") as HTMLElement;
const environment = document.getElementById("environment") as HTMLElement;
const headSelect = document.getElementById("head-select") as HTMLSelectElement;

let lastReport: RunReport | undefined;

function setState(state: "idle" | "running" | "done" | "error", line: string): void {
  result.dataset.state = state;
  status.textContent = line;
}

/** A tagged error from core reads as "BackendUnavailable (FeatureMissing): message"; anything else by its message. */
function describeError(e: unknown): string {
  const err = e as { _tag?: string; reason?: string; message?: string };
  if (err?._tag) return `${err._tag}${err.reason ? ` (${err.reason})` : ""}: ${err.message}`;
  return e instanceof Error ? e.message : String(e);
}

/** "label: <b>value</b>" as DOM nodes (adapter names come from the browser; they are never parsed as HTML). */
function fact(label: string, value: string): Node[] {
  const b = document.createElement("b");
  b.textContent = value;
  return [document.createTextNode(`${label}: `), b];
}

async function describeEnvironment(): Promise<void> {
  const f = await probeBrowser();
  const yes = (b: boolean) => (b ? "yes" : "no");
  const webgpu = f.webgpuAvailable ? `${f.webgpu}, ${f.shaderF16 ? "shader-f16" : "no shader-f16"}` : f.webgpu;
  const sep = () => document.createTextNode(" · ");
  environment.replaceChildren(
    ...fact("WebGPU", webgpu),
    sep(),
    ...fact("WebAssembly relaxed SIMD", yes(f.relaxedSimd)),
    sep(),
    ...fact("cross-origin isolated (worker threads)", yes(f.crossOriginIsolated)),
    sep(),
    document.createTextNode(`${f.threads} hardware threads`),
  );
  if (subgroupsAsked) {
    const webgpu = await runToPromise(loadBackend("webgpu")).catch(() => undefined);
    environment.append(sep(), ...fact("webgpu subgroups", webgpu?.details.subgroups ?? "backend not loaded"));
  }
  const lines = await backendLines();
  const backends = document.createElement("span");
  backends.className = "backends";
  backends.textContent = `Backends here: ${lines.map((l) => `${l.name} ${l.ok ? "✓" : "✗"}`).join(", ")}.`;
  backends.title = lines.map((l) => `${l.name}: ${l.text}`).join("\n");
  environment.append(document.createElement("br"), backends);
}

/** How SageAttention's speed compares with exact attention, when both ran on the same engine. */
function speedup(report: RunReport): string {
  if (!report.exactOnSameEngine) return "";
  return ` SageAttention ran at ${
    (report.exact.ms / report.sage.ms).toFixed(2)
  }× the speed of exact attention on the same engine.`;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const request = readRequest(form);
  if (typeof request === "string") {
    setState("error", request);
    return;
  }
  button.disabled = true;
  const started = performance.now();
  try {
    await configured;
    const report = await measure(request, (line) => setState("running", line));
    setState("running", "Drawing the attention maps…");
    renderReport(report);
    lastReport = report;
    // For a script driving the page: the browser test judges this run with core's checkOutput.
    (window as { sageattnLastRun?: RunReport }).sageattnLastRun = report;
    setState(
      "done",
      `Done in ${((performance.now() - started) / 1000).toFixed(1)} s on ${report.backend}.${speedup(report)}`,
    );
  } catch (e) {
    setState("error", describeError(e));
  } finally {
    button.disabled = false;
    // Counts finished runs (done or failed), so a script driving the page knows when this one is over.
    result.dataset.runs = String(Number(result.dataset.runs ?? 0) + 1);
  }
});

headSelect.addEventListener("change", () => {
  if (lastReport) renderMaps(lastReport, Number(headSelect.value));
});

configured.then(describeEnvironment).catch((e) => {
  environment.textContent = `Could not probe this browser: ${describeError(e)}`;
});
