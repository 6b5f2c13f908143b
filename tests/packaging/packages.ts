import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The repository root. */
export const REPO = join(import.meta.dirname, "..", "..");

/** Every package a user installs, by workspace folder. */
export const PUBLISHED = {
  "@sageattn/core": "packages/core",
  "@sageattn/backend-cpu-simd": "packages/backend-cpu-simd",
  "@sageattn/backend-webgpu": "packages/backend-webgpu",
  "@sageattn/backend-cuda": "packages/backend-cuda",
  sageattn: "packages/sageattn",
  "@sageattn/cli": "apps/cli",
} as const;

export type PackageName = keyof typeof PUBLISHED;

/** A repo tool from node_modules/.bin (bun, deno, workerd). */
export const bin = (name: string) => join(REPO, "node_modules", ".bin", name);

/** Names of `name`'s runtime dependencies and theirs, as installed in the repo (for effect: its own closure). */
export function dependencyClosure(name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const pkg = JSON.parse(readFileSync(join(REPO, "node_modules", name, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  for (const dep of Object.keys(pkg.dependencies ?? {})) dependencyClosure(dep, seen);
  return seen;
}

/** `npm pack` of a folder into `dest`; returns the tarball's path. */
export function pack(folder: string, dest: string): string {
  const out = execFileSync("npm", ["pack", "--json", "--pack-destination", dest, join(REPO, folder)], {
    cwd: REPO,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  return join(dest, (JSON.parse(out) as Array<{ filename: string }>)[0].filename);
}

/** The files `npm pack --dry-run` would put in a package's tarball. */
export function packedFiles(folder: string): string[] {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", join(REPO, folder)], {
    cwd: REPO,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  return (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path);
}
