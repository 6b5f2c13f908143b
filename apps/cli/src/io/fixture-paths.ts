/** Test support: where the committed fixtures live, and python3 + numpy as an independent reader. Imported by tests only. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { TensorFileError } from "./tensor-file.js";

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

/** The values and shape every "small" fixture holds (written beside them by make_fixtures.py). */
export const smallValues = (): { shape: number[]; values: number[] } =>
  JSON.parse(readFileSync(fixture("small_values.json"), "utf8"));

/** The TensorFileError that `f` throws; fails the test when it throws anything else or nothing. */
export function thrown(f: () => unknown): TensorFileError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TensorFileError);
    return e as TensorFileError;
  }
  throw new Error("expected a TensorFileError");
}
