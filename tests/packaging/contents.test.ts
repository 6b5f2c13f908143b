import { describe, expect, it } from "vitest";
import { packedFiles, PUBLISHED } from "./packages.js";

// What a user does not need: sources, tests, fixtures, benches, source maps. CUDA sources stay (built where nvcc is).
const NOT_FOR_USERS = [
  /^(src|test|tests|bench|assembly)\//,
  /(^|\/)(fixtures|__tests__)\//,
  /\.test\.[jt]s$/,
  /\.map$/,
  /(?<!\.d)\.ts$/,
  /\.tsbuildinfo$/,
  /\.npy$|\.safetensors$/,
];

describe("npm pack --dry-run", () => {
  for (const [name, folder] of Object.entries(PUBLISHED)) {
    it(`${name} has LICENSE, README.md and no tests, fixtures or sources`, () => {
      const files = packedFiles(folder);
      expect(files).toEqual(expect.arrayContaining(["LICENSE", "README.md", "package.json"]));
      expect(files.filter((f) => NOT_FOR_USERS.some((re) => re.test(f)))).toEqual([]);
      expect(files.some((f) => f.startsWith("dist/"))).toBe(true);
    });
  }

  it("@sageattn/backend-cpu-simd ships its wasm files for runtimes that import .wasm", () => {
    const wasm = packedFiles(PUBLISHED["@sageattn/backend-cpu-simd"]).filter((f) => f.endsWith(".wasm"));
    expect(wasm.sort()).toEqual(
      ["relaxed-simd-shared", "relaxed-simd-unshared", "simd128-shared", "simd128-unshared"].map((n) =>
        `wasm/${n}.wasm`
      ),
    );
  });
});
