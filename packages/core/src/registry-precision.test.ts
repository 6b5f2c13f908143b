import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { attention } from "./api.js";
import { type BackendProvider, type Capabilities, pvOracleMode } from "./backend.js";
import { jsBackend } from "./js-backend.js";
import { createKvCache } from "./kv-cache-api.js";
import { registerBackend } from "./registry.js";
import { hostTensor } from "./tensor.js";

// Stand-ins above js with what cuda/webgpu ("f16-block", "f32") and cpu-simd ("fixed16") declare today.
const standIn = (name: string, priority: number, pv: Capabilities["pv"]): BackendProvider => ({
  name,
  priority,
  load: Effect.succeed({
    ...jsBackend,
    name,
    capabilities: { ...jsBackend.capabilities, pv, qkGranularity: ["block"] },
  }),
});
registerBackend(standIn("test-f16-pv", 900, ["f16-block", "f32"]));
registerBackend(standIn("test-fixed16-pv", 800, ["fixed16"]));

const t = () => hostTensor(Float32Array.from({ length: 2 * 8 * 16 }, (_, i) => Math.sin(i)), [1, 2, 8, 16]);
const FP8 = "fp8 P·V (pvAccumulation) not supported";
const INT8 = "int8 P·V (pvAccumulation) not supported";
const WARP = 'qkGranularity "warp" not supported';

describe("fp8 and int8 P·V and warp granularity in backend selection", () => {
  it("runs on the best backend when neither is asked for", async () => {
    expect((await attention(t(), t(), t())).backend).toBe("test-f16-pv");
    expect((await attention(t(), t(), t(), { qkGranularity: "block", pvAccumulation: "f32" })).backend).toBe(
      "test-f16-pv",
    );
  });

  it("passes over backends without them, as for any unsupported option, down to js", async () => {
    for (
      const [options, message] of [
        [{ pvAccumulation: "fp8" }, FP8],
        [{ pvAccumulation: "int8" }, INT8],
        [{ qkGranularity: "warp" }, WARP],
      ] as const
    ) {
      const r = await attention(t(), t(), t(), options);
      expect(r.backend).toBe("js");
      expect(r.rejected).toEqual(
        expect.arrayContaining([
          { backend: "test-f16-pv", reason: "Unsupported", message },
          { backend: "test-fixed16-pv", reason: "Unsupported", message },
        ]),
      );
    }
  });

  it("fails with BackendUnavailable Unsupported on a backend named for the call", async () => {
    for (const backend of ["test-f16-pv", "test-fixed16-pv"]) {
      await expect(attention(t(), t(), t(), { backend, pvAccumulation: "fp8" })).rejects.toMatchObject({
        _tag: "BackendUnavailable",
        reason: "Unsupported",
        message: FP8,
      });
      await expect(attention(t(), t(), t(), { backend, pvAccumulation: "int8" })).rejects.toMatchObject({
        _tag: "BackendUnavailable",
        reason: "Unsupported",
        message: INT8,
      });
      await expect(attention(t(), t(), t(), { backend, qkGranularity: "warp" })).rejects.toMatchObject({
        _tag: "BackendUnavailable",
        reason: "Unsupported",
        message: WARP,
      });
    }
    expect((await attention(t(), t(), t(), { backend: "js", pvAccumulation: "fp8", qkGranularity: "warp" })).backend)
      .toBe("js");
    expect((await attention(t(), t(), t(), { backend: "js", pvAccumulation: "int8", qkGranularity: "row" })).backend)
      .toBe("js");
  });

  it("holds a backend that declares int8 to the int8 oracle, never another mode's", () => {
    expect(pvOracleMode({ ...jsBackend.capabilities, pv: ["f16-block", "f32"] }, "int8")).toBe("int8");
    expect(pvOracleMode({ ...jsBackend.capabilities, pv: ["fixed16"] }, "int8")).toBe("int8");
    expect(pvOracleMode({ ...jsBackend.capabilities, pv: ["f16-block", "int8"] }, "f32")).toBe("f16-block");
  });

  it("rejects values outside the two options' sets with InvalidInput InvalidOption", async () => {
    for (
      const options of [
        { pvAccumulation: "fp16" },
        { pvAccumulation: "e4m3" },
        { pvAccumulation: "INT8" },
        { qkGranularity: "lane" },
      ]
    ) {
      await expect(attention(t(), t(), t(), options as never), JSON.stringify(options)).rejects.toMatchObject({
        _tag: "InvalidInput",
        reason: "InvalidOption",
      });
    }
  });

  it("keeps fp8 and int8 out of KV caches (their attend takes f16 P·V only)", async () => {
    const cache = await createKvCache({ batch: 1, headsKv: 2, headDim: 16, capacity: 8, dtype: "f32", backend: "js" });
    await cache.append(t(), t());
    for (const pv of ["fp8", "int8"]) {
      await expect(cache.attend(t(), { pvAccumulation: pv as never })).rejects.toMatchObject({
        _tag: "InvalidInput",
        reason: "InvalidOption",
        message: `attend takes pvAccumulation "f16-block" or "f32", not "${pv}"`,
      });
    }
    await cache.dispose();
  });
});
