import { Effect } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import { attention } from "./api.js";
import type { BackendProvider } from "./backend.js";
import { BackendUnavailable } from "./errors.js";
import { jsBackend } from "./js-backend.js";
import { backendStatus, registerBackend } from "./registry.js";
import { hostTensor } from "./tensor.js";

// Two stand-ins around the real js backend: one whose device is missing, one that cannot do causal attention.
const missing: BackendProvider = {
  name: "test-missing",
  priority: 1000,
  load: Effect.fail(
    new BackendUnavailable({ backend: "test-missing", reason: "NoDevice", message: "no test device here" }),
  ),
};
const noCausal: BackendProvider = {
  name: "test-no-causal",
  priority: 900,
  load: Effect.succeed({
    ...jsBackend,
    name: "test-no-causal",
    capabilities: { ...jsBackend.capabilities, causal: false },
  }),
};
registerBackend(missing);
registerBackend(noCausal);

const t = () => hostTensor(Float32Array.from({ length: 2 * 8 * 16 }, (_, i) => Math.sin(i)), [1, 2, 8, 16]);

describe("backend selection", () => {
  afterEach(() => {
    delete process.env.SAGEATTN_BACKEND;
  });

  it("takes the highest-priority backend that loads and supports the call, recording why others were passed over", async () => {
    const r = await attention(t(), t(), t());
    expect(r.backend).toBe("test-no-causal");
    expect(r.rejected).toContainEqual({ backend: "test-missing", reason: "NoDevice", message: "no test device here" });
  });

  it("passes over a backend that lacks a requested option", async () => {
    const r = await attention(t(), t(), t(), { causal: true });
    expect(r.backend).not.toBe("test-no-causal");
    expect(r.rejected.map((x) => [x.backend, x.reason])).toEqual(
      expect.arrayContaining([["test-missing", "NoDevice"], ["test-no-causal", "Unsupported"]]),
    );
  });

  it("runs the backend named in the options, or fails with its own reason", async () => {
    expect((await attention(t(), t(), t(), { backend: "js" })).backend).toBe("js");
    await expect(attention(t(), t(), t(), { backend: "test-missing" })).rejects.toMatchObject({
      _tag: "BackendUnavailable",
      reason: "NoDevice",
    });
    await expect(attention(t(), t(), t(), { backend: "nonesuch" })).rejects.toMatchObject({
      _tag: "BackendUnavailable",
      reason: "NotInstalled",
    });
    await expect(attention(t(), t(), t(), { backend: "test-no-causal", causal: true })).rejects.toMatchObject({
      _tag: "BackendUnavailable",
      reason: "Unsupported",
    });
  });

  it("honours SAGEATTN_BACKEND", async () => {
    process.env.SAGEATTN_BACKEND = "js";
    expect((await attention(t(), t(), t())).backend).toBe("js");
  });

  it("refuses inputs that live on two different backends", async () => {
    const dev = (backend: string) => ({ ...t(), kind: "device" as const, backend, handle: null, dispose: () => {} });
    await expect(attention(dev("a"), dev("b"), dev("a"))).rejects.toMatchObject({
      _tag: "InvalidInput",
      reason: "InvalidOption",
    });
  });

  it("lists every backend with its status", async () => {
    const rows = await Effect.runPromise(backendStatus());
    const byName = new Map(rows.map((r) => [r.name, r]));
    expect(byName.get("js")?.backend?.name).toBe("js");
    expect(byName.get("test-missing")?.rejection?.reason).toBe("NoDevice");
    // The three backend packages are always listed: found, or missing with a reason.
    for (const name of ["cuda", "webgpu", "cpu-simd"]) expect(byName.has(name)).toBe(true);
  });
});
