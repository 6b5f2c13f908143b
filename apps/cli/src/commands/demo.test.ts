import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { demoCommand } from "./demo.js";

let stdout = "";
let stderr = "";
beforeEach(() => {
  stdout = stderr = "";
  vi.spyOn(console, "log").mockImplementation((s) => void (stdout += `${s}\n`));
  vi.spyOn(console, "error").mockImplementation((s) => void (stderr += `${s}\n`));
  vi.spyOn(process.stderr, "write").mockImplementation((s) => ((stderr += String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

describe("sageattn demo", () => {
  it("runs on js with accuracy near exact, and says faster or slower as measured", async () => {
    const code = await demoCommand(["--backend", "js", "--n", "64", "--heads", "1", "--dim", "16"]);
    expect(code).toBe(0);
    const cosine = Number(/cosine (\d\.\d+)/.exec(stdout)?.[1]);
    expect(cosine).toBeGreaterThan(0.999);
    const [, ours, exact, word] =
      /sageattn: +([\d.]+) ms[\s\S]*exact kernel: +([\d.]+) ms.*sageattn [\d.]+× (faster|slower)/
        .exec(stdout) ?? [];
    expect(word).toBe(Number(exact) >= Number(ours) ? "faster" : "slower");
  });

  it("a head dim the library refuses is a usage error (status 2), not a failure", async () => {
    const code = await demoCommand(["--backend", "js", "--n", "64", "--heads", "1", "--dim", "1000"]);
    expect(code).toBe(2);
    expect(stderr).toContain("InvalidHeadDim");
  });
});
