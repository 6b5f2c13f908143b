import { Effect } from "effect";
import { describe, expect, it, vi } from "vitest";
import { attention } from "./api.js";
import { type BackendProvider, SOFTWARE_PRIORITY } from "./backend.js";
import { jsBackend } from "./js-backend.js";
import { backendStatus, useBackends } from "./registry.js";
import { hostTensor } from "./tensor.js";

// A GPU-like backend on a software adapter (priority 200) and a CPU backend (priority 100) that cannot do masks;
// the software one cannot do LSE, so a call with a mask and LSE can only land on js.
const soft: BackendProvider = {
  name: "test-soft",
  priority: 200,
  load: Effect.succeed({
    ...jsBackend,
    name: "test-soft",
    device: "llvmpipe (fallback adapter)",
    details: { software: "true" },
    capabilities: { ...jsBackend.capabilities, lse: false },
  }),
};
const cpu: BackendProvider = {
  name: "test-cpu",
  priority: 100,
  load: Effect.succeed({ ...jsBackend, name: "test-cpu", capabilities: { ...jsBackend.capabilities, mask: false } }),
};
// Only these two (and js): installed backend packages would serve the calls meant to reach the software one.
useBackends([soft, cpu]);

const t = () => hostTensor(Float32Array.from({ length: 2 * 8 * 16 }, (_, i) => Math.cos(i)), [1, 2, 8, 16]);
const mask = () => ({ kind: "boolean" as const, data: new Uint8Array(8 * 8).fill(1), shape: [1, 1, 8, 8] as const });

describe("software devices rank below cpu-simd", () => {
  it("auto-selection passes over a software backend for the CPU one, with the reason Software", async () => {
    const r = await attention(t(), t(), t());
    expect(r.backend).toBe("test-cpu");
    expect(r.rejected).toContainEqual(expect.objectContaining({ backend: "test-soft", reason: "Software" }));
  });

  it("takes the software backend over js when the CPU backend cannot serve the call", async () => {
    const r = await attention(t(), t(), t(), { mask: mask() });
    expect(r.backend).toBe("test-soft");
    expect(r.rejected.map((x) => [x.backend, x.reason])).toEqual([["test-cpu", "Unsupported"]]);
  });

  it("still runs the software backend when named", async () => {
    const r = await attention(t(), t(), t(), { backend: "test-soft" });
    expect(r.backend).toBe("test-soft");
  });

  it("lists the software backend at SOFTWARE_PRIORITY with its reason", async () => {
    const rows = await Effect.runPromise(backendStatus());
    const row = rows.find((r) => r.name === "test-soft");
    expect(row?.priority).toBe(SOFTWARE_PRIORITY);
    expect(row?.backend).toBeDefined();
    expect(row?.rejection?.reason).toBe("Software");
    expect(rows.map((r) => r.name)).toEqual(["test-cpu", "test-soft", "js"]);
  });

  it("warns once when auto-selection lands on js", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const a = await attention(t(), t(), t(), { mask: mask(), returnLse: true });
      await attention(t(), t(), t(), { mask: mask(), returnLse: true });
      expect(a.backend).toBe("js");
      expect(warn).toHaveBeenCalledTimes(1);
      const said = String(warn.mock.calls[0][0]);
      expect(said).toMatch(/js oracle/);
      expect(said).toContain("test-cpu: Unsupported");
      expect(said).toContain("test-soft: Unsupported");
    } finally {
      warn.mockRestore();
    }
  });
});
