import { defineConfig } from "vitest/config";

// The run/bench tests start the CLI and python3 as child processes: on a busy 2-core machine one can take longer
// than vitest's 5 s default without anything being wrong.
export default defineConfig({ test: { testTimeout: 60_000 } });
