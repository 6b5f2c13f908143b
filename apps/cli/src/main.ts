#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { dispose } from "@sageattn/core";
import { EXIT_USAGE, reportError } from "./errors.js";
import { benchCommand } from "./commands/bench.js";
import { demoCommand } from "./commands/demo.js";
import { infoCommand } from "./commands/info.js";
import { runCommand } from "./commands/run.js";

const HELP = `sageattn — SageAttention (INT8 Q·Kᵀ with K smoothing, FP16 P·V) on CUDA, WebGPU or WebAssembly SIMD

usage: sageattn <command> [options]
       sageattn --version

  info     the runtime, the backends found, and why any was rejected
  demo     a realistic attention workload on the best backend: time, TOPS, accuracy
  bench    a grid of shapes per backend, optionally against peers (onnxruntime, tfjs, torch)
  run      attention on Q, K, V read from .npy or .safetensors files

sageattn <command> --help for a command's options. SAGEATTN_BACKEND forces a backend; SAGEATTN_DEBUG=1 logs selection.`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  info: infoCommand,
  demo: demoCommand,
  bench: benchCommand,
  run: runCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(HELP);
    return name ? 0 : EXIT_USAGE;
  }
  if (name === "--version" || name === "-v") {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`sageattn: unknown command "${name}"\n\n${HELP}`);
    return EXIT_USAGE;
  }
  try {
    return await command(rest);
  } catch (e) {
    // parseArgs throws on unknown flags: reportError tells a usage error (status 2) from a failure.
    return reportError(name, e);
  } finally {
    await dispose();
  }
}

// A reader that stops early (`sageattn info | head -1`) closes the pipe: the rest of the output has nowhere to go, so
// stop there, quietly and with success, as other command-line tools do, instead of Node's unhandled EPIPE trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exit(process.exitCode ?? 0);
  });
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
