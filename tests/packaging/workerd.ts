import { readFileSync, writeFileSync } from "node:fs";
import { basename, join, posix } from "node:path";

/**
 * A workerd config for a bundled worker at `out/worker.js` whose `.wasm` imports stayed external: each becomes a wasm
 * module named as workerd resolves the import, embedding the file cpu-simd ships.
 */
export function workerdConfig(dir: string): string {
  const bundle = readFileSync(join(dir, "out", "worker.js"), "utf8");
  const specs = [...new Set([...bundle.matchAll(/from\s+"([^"]+\.wasm)"/g)].map((m) => m[1]))];
  if (specs.length === 0) throw new Error("the worker bundle imports no .wasm file");
  const wasmDir = "node_modules/@sageattn/backend-cpu-simd/wasm";
  const modules = [
    `(name = "out/worker.js", esModule = embed "out/worker.js")`,
    ...specs.map((s) =>
      `(name = "${posix.normalize(posix.join("out", s))}", wasm = embed "${wasmDir}/${basename(s)}")`
    ),
  ];
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (services = [(name = "main", worker = .main)]);
const main :Workerd.Worker = (modules = [${modules.join(", ")}], compatibilityDate = "2025-01-01");
`;
  const path = join(dir, "config.capnp");
  writeFileSync(path, config);
  return path;
}
