import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { dependencyClosure, pack, PUBLISHED } from "./packages.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Tarball path by package name: ours, and effect's closure packed from the repo's node_modules. */
    tarballs: Record<string, string>;
    /** The closure of effect (its own dependencies), whose size the budgets leave out. */
    effectClosure: string[];
  }
}

/** Packs every published package, and effect with its dependencies (so installs need no registry). */
export default function setup(project: TestProject) {
  const dest = mkdtempSync(join(tmpdir(), "sageattn-tarballs-"));
  const tarballs: Record<string, string> = {};
  for (const [name, folder] of Object.entries(PUBLISHED)) tarballs[name] = pack(folder, dest);
  const effectClosure = [...dependencyClosure("effect")];
  for (const name of effectClosure) tarballs[name] = pack(join("node_modules", name), dest);
  project.provide("tarballs", tarballs);
  project.provide("effectClosure", effectClosure);
  return () => rmSync(dest, { recursive: true, force: true });
}
