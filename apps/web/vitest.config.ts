import { defineConfig } from "vitest/config";

// The browser test builds the page, serves it and drives Chromium: one file, generous hook time on a 2-core CI box.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 240_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
