// Issue #11 item 2 / #12: a script that uses cpu-simd's workers and never calls dispose() must end by itself
// under the runtime running this test (Node, Bun, Deno): idle workers must not hold the process open.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const core =
  pathToFileURL(join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../../core/dist/index.js")).href;

const SCRIPT = `
import { attention, hostTensor } from ${JSON.stringify(core)};
const x = new Float32Array(4 * 256 * 64).map((_, i) => Math.sin(i));
const t = hostTensor(x, [1, 4, 256, 64]);
const r = await attention(t, t, t, { backend: "cpu-simd" });
console.log("ran on", r.backend);
`;

/** The command line that runs a module file under this test's own runtime. */
function selfCommand(file: string): [string, string[]] {
  const g = globalThis as { Deno?: { execPath(): string }; Bun?: unknown };
  if (g.Deno) return [g.Deno.execPath(), ["run", "-A", "--node-modules-dir=manual", file]];
  return [process.execPath, [file]];
}

describe("a process using cpu-simd's workers", () => {
  it("exits by itself with status 0 without dispose()", () => {
    const dir = mkdtempSync(join(tmpdir(), "sageattn-exit-"));
    try {
      const file = join(dir, "main.mjs");
      writeFileSync(file, SCRIPT);
      const [cmd, args] = selfCommand(file);
      // The limit only stops a hang from stalling the suite; a process kept alive by a worker is killed and fails.
      const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000 });
      expect(r.stdout + r.stderr, `${cmd} ${args.join(" ")}`).toContain("ran on cpu-simd");
      expect(r.signal, "killed: the process did not exit by itself").toBeNull();
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
