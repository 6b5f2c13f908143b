// Under Node and Bun, WebGPU comes from a Dawn package; with no GPU device node it is not even imported (Dawn could
// only offer a CPU adapter, after printing Vulkan warnings), and the backend says why. Deno uses its own navigator.gpu.
import { Cause, Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import { gpuDeviceNodes } from "./acquire.js";
import { provider } from "./index.js";

const deno = "Deno" in globalThis;
const nodes = await gpuDeviceNodes();

describe.skipIf(deno || nodes !== 0)("webgpu under Node and Bun on a Linux machine without a GPU device node", () => {
  it("is unavailable with NoDevice, naming the Dawn package it did not probe", async () => {
    const exit = await Effect.runPromiseExit(provider.load);
    expect(Exit.isFailure(exit)).toBe(true);
    const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined;
    expect(error).toMatchObject({ _tag: "BackendUnavailable", reason: "NoDevice" });
    const pkg = "Bun" in globalThis ? "bun-webgpu" : "webgpu";
    expect((error as Error).message).toContain(`${pkg} (Dawn) not probed`);
  });
});
