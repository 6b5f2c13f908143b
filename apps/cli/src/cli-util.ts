/** What every command shares: error reporting that never shows a stack trace for a known failure, and machine facts. */
import { cpus } from "node:os";
import { runtimeName } from "@sageattn/core";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A one-line description of a thrown value: tagged errors show tag, reason and message. */
export function describeError(e: unknown): string {
  const x = e as { _tag?: string; reason?: string; message?: string };
  if (x && typeof x === "object" && x._tag) return `${x._tag}${x.reason ? `/${x.reason}` : ""}: ${x.message ?? ""}`;
  return e instanceof Error ? e.message : String(e);
}

/** "AMD EPYC 7B13 (2 cores), node 20.20.2". */
export function machineName(): string {
  const c = cpus();
  return `${c[0]?.model?.trim() ?? "unknown CPU"} (${c.length} cores), ${runtimeName()}`;
}

/** Prints a table with aligned columns. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ")).join("\n");
}
