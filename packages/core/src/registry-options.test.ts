// loadBackend(name, options): an app configures a backend by name, core hands the options to the provider's
// `configure`, and that backend then serves every call by the name; bad options are a typed error.
import { Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import { attention } from "./api.js";
import type { AttentionBackend, BackendProvider } from "./backend.js";
import { invalid } from "./errors.js";
import { jsBackend } from "./js-backend.js";
import { disposeBackends, loadBackend, registerBackend } from "./registry.js";
import { hostTensor } from "./tensor.js";

const disposed: string[] = [];
/** A js backend whose `details.width` records the option it was configured with. */
const configured = (width: number): AttentionBackend => ({
  ...jsBackend,
  name: "test-configurable",
  details: { width: String(width) },
  dispose: Effect.sync(() => void disposed.push(String(width))),
});
const provider: BackendProvider = {
  name: "test-configurable",
  priority: -1,
  load: Effect.succeed(configured(1)),
  configure: (o) =>
    typeof o.width === "number" && Number.isInteger(o.width) && o.width > 0 &&
      Object.keys(o).every((k) => k === "width")
      ? Effect.succeed(configured(o.width))
      : Effect.fail(
        invalid("InvalidOption", `test-configurable takes { width: positive integer }, got ${JSON.stringify(o)}`),
      ),
};
registerBackend(provider);
registerBackend({ name: "test-plain", priority: -1, load: Effect.succeed({ ...jsBackend, name: "test-plain" }) });

describe("loadBackend with options", () => {
  it("configures the backend, which then serves calls by name; the one loaded before is disposed", async () => {
    const first = await Effect.runPromise(loadBackend("test-configurable"));
    expect(first.details.width).toBe("1");
    const b = await Effect.runPromise(loadBackend("test-configurable", { width: 3 }));
    expect(b.details.width).toBe("3");
    expect(disposed).toEqual(["1"]);
    expect((await Effect.runPromise(loadBackend("test-configurable"))).details.width).toBe("3");
    const t = hostTensor(Float32Array.from({ length: 64 }, (_, i) => Math.cos(i)), [1, 1, 4, 16]);
    expect((await attention(t, t, t, { backend: "test-configurable" })).backend).toBe("test-configurable");
    await Effect.runPromise(disposeBackends());
    expect(disposed).toEqual(["1", "3"]);
    expect((await Effect.runPromise(loadBackend("test-configurable"))).details.width).toBe("3");
  });

  it("rejects bad options, and options for a backend that takes none, with InvalidInput InvalidOption", async () => {
    for (
      const [name, options] of [["test-configurable", { width: -2 }], ["test-configurable", { widht: 2 }], [
        "test-plain",
        { threads: 2 },
      ]] as const
    ) {
      const exit = await Effect.runPromiseExit(loadBackend(name, options));
      expect(
        Exit.isFailure(exit) && exit.cause._tag === "Fail"
          ? [exit.cause.error._tag, exit.cause.error.reason]
          : "succeeded",
        `${name} ${JSON.stringify(options)}`,
      ).toEqual(["InvalidInput", "InvalidOption"]);
    }
  });

  it("says NotInstalled for a backend nobody registered", async () => {
    const exit = await Effect.runPromiseExit(loadBackend("test-nowhere", { x: 1 }));
    expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.reason : "succeeded").toBe(
      "NotInstalled",
    );
  });
});
