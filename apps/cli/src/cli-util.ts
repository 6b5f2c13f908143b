/** What every command shares besides errors (errors.ts): machine facts and tables. */
import { cpus } from "node:os";
import { runtimeName } from "@sageattn/core";

/** "AMD EPYC 7B13 (2 cores), node 20.20.2". */
export function machineName(): string {
  const c = cpus();
  return `${c[0]?.model?.trim() ?? "unknown CPU"} (${c.length} cores), ${runtimeName()}`;
}

/** Prints a table with aligned columns. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  "))
    .join("\n");
}
