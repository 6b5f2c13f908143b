// An app configures webgpu through core (`loadBackend("webgpu", options)`): bad options are InvalidInput
// InvalidOption before any adapter is asked for, on every runtime.
import { loadBackend, registerBackend } from "@sageattn/core";
import { Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import { provider } from "./index.js";

registerBackend(provider);

describe('loadBackend("webgpu", options)', () => {
  for (const options of [{ f16: "no" }, { profile: 1 }, { subgroups: "yes" }, { tile: "big" }, { device: {} }]) {
    it(`rejects ${JSON.stringify(options)} with InvalidInput InvalidOption`, async () => {
      const exit = await Effect.runPromiseExit(loadBackend("webgpu", options));
      expect(
        Exit.isFailure(exit) && exit.cause._tag === "Fail"
          ? `${exit.cause.error._tag}/${exit.cause.error.reason}`
          : "loaded",
      ).toBe("InvalidInput/InvalidOption");
    });
  }
});
