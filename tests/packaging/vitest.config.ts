import { defineConfig } from "vitest/config";

// Packs every package once (globalSetup), then installs the tarballs into fresh projects, one file at a time.
export default defineConfig({
  test: {
    root: import.meta.dirname,
    dir: import.meta.dirname,
    include: ["**/*.test.ts"],
    globalSetup: ["./pack-all.ts"],
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
});
