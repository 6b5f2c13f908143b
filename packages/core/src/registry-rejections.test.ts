// How rejections read: the js fallback's advice follows cpu-simd's own reason, and a load that throws is told in one line.
import { Effect } from "effect";
import { describe, expect, it, vi } from "vitest";
import { attention } from "./api.js";
import type { BackendProvider } from "./backend.js";
import { jsBackend } from "./js-backend.js";
import { useBackends } from "./registry.js";
import { hostTensor } from "./tensor.js";

// cpu-simd installed and loaded, but without masks: a masked call can only land on js, and the warning must not tell
// the user to install what is installed.
const simd: BackendProvider = {
  name: "cpu-simd",
  priority: 100,
  load: Effect.succeed({ ...jsBackend, name: "cpu-simd", capabilities: { ...jsBackend.capabilities, mask: false } }),
};
// A backend whose load throws (a defect, e.g. a runtime refusing a file read) with a multi-line message.
const throws: BackendProvider = {
  name: "test-throws",
  priority: 300,
  load: Effect.sync(() => {
    throw new Error("NotCapable: Requires read access\n    at existsSync (ext:deno_node/fs.ts:1:1)");
  }),
};
useBackends([simd, throws]);

const t = () => hostTensor(Float32Array.from({ length: 2 * 8 * 16 }, (_, i) => Math.sin(i)), [1, 2, 8, 16]);
const mask = () => ({ kind: "boolean" as const, data: new Uint8Array(8 * 8).fill(1), shape: [1, 1, 8, 8] as const });

describe("the js fallback's warning", () => {
  it("names the options cpu-simd cannot run, not an install, when cpu-simd is there", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const r = await attention(t(), t(), t(), { mask: mask() });
      expect(r.backend).toBe("js");
      expect(warn).toHaveBeenCalledTimes(1);
      const said = String(warn.mock.calls[0][0]);
      expect(said).toContain("cpu-simd: Unsupported");
      expect(said).toContain("test-throws: FeatureMissing");
      expect(said).toMatch(/cpu-simd is installed but cannot run this call's options \(.*mask/);
      expect(said).not.toMatch(/Install @sageattn\/backend-cpu-simd/);
    } finally {
      warn.mockRestore();
    }
  });
});

describe("a backend whose load throws", () => {
  it("is passed over as FeatureMissing with the error's first line, not its stack", async () => {
    const r = await attention(t(), t(), t());
    expect(r.backend).toBe("cpu-simd");
    expect(r.rejected).toContainEqual({
      backend: "test-throws",
      reason: "FeatureMissing",
      message: "test-throws failed to load: NotCapable: Requires read access",
    });
  });
});
