import { readFileSync } from "node:fs";
import { arch, availableParallelism, cpus, platform, totalmem } from "node:os";
import { runtimeName } from "@sageattn/core";

/** The machine a benchmark ran on, as printed above the table and stored in the JSON. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly runtime: string;
  /** The vector extensions that decide CPU attention speed (Linux: from /proc/cpuinfo; empty elsewhere). */
  readonly cpuFeatures: readonly string[];
}

/** Flags worth naming, in the order printed: a peer's native kernels use AVX-512 where it exists. */
const NOTABLE_FLAGS = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_vnni", "amx_int8"];

function cpuFeatures(): string[] {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const flags = new Set((/^flags\s*:(.*)$/m.exec(info)?.[1] ?? "").trim().split(/\s+/));
    return NOTABLE_FLAGS.filter((f) => flags.has(f));
  } catch {
    return [];
  }
}

export function describeMachine(): Machine {
  const list = cpus();
  return {
    cpu: (list[0]?.model ?? "unknown CPU").trim(),
    cores: typeof availableParallelism === "function" ? availableParallelism() : list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${arch()}`,
    runtime: runtimeName(),
    cpuFeatures: cpuFeatures(),
  };
}

/** "AMD EPYC (2 cores, avx2 fma avx512f), node 20.20.2, linux x64". */
export function machineLine(m: Machine): string {
  const features = m.cpuFeatures.length ? `, ${m.cpuFeatures.join(" ")}` : "";
  return `${m.cpu} (${m.cores} cores${features}), ${m.runtime}, ${m.os}`;
}
