import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const main = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const node = (globalThis as { Bun?: unknown; Deno?: unknown }).Bun || (globalThis as { Deno?: unknown }).Deno
  ? "node"
  : process.execPath;

describe("sageattn's output read by a command that stops early", () => {
  // `| true` closes the pipe before node has started, so every write the CLI makes meets EPIPE.
  it.runIf(process.platform !== "win32" && existsSync(main)).each(["info", "run --help"])(
    "sageattn %s | true: no stack trace, status 0",
    (args) => {
      const r = spawnSync("bash", ["-c", 'set -o pipefail; "$0" "$@" | true', node, main, ...args.split(" ")], {
        encoding: "utf8",
        env: { ...process.env, SAGEATTN_BACKEND: "js" },
      });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    },
  );
});

describe("sageattn info", () => {
  it.runIf(existsSync(main))("says why a default call would run nowhere", () => {
    const r = spawnSync(node, [main, "info"], { encoding: "utf8", env: { ...process.env, SAGEATTN_BACKEND: "bogus" } });
    expect(r.stdout).toMatch(/default call runs on: none \(backend bogus unavailable \(NotInstalled\): .*"bogus"/);
    expect(r.status).toBe(0);
  });
});
