/** Test support: where the committed fixtures live, and python3 + numpy as an independent reader. Imported by tests only. */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Path of a committed fixture (written by fixtures/make_fixtures.py with numpy). */
export const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

let numpy: boolean | undefined;

/** Whether python3 with numpy runs here (checked once). */
export function hasNumpy(): boolean {
  numpy ??= spawnSync("python3", ["-c", "import numpy"], { stdio: "ignore", timeout: 20_000 }).status === 0;
  return numpy;
}

/** Runs a python3 snippet (with argv) and returns its stdout; throws with python's stderr when it fails. */
export function python(code: string, args: readonly string[] = []): string {
  const r = spawnSync("python3", ["-c", code, ...args], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return r.stdout;
}
