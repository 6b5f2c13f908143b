import { BOUNDS, exactBound, type PvAccumulation, type QkGranularity } from "@sageattn/core";
import { formatShape, formatTime, sig3 } from "./format.js";
import { type Machine, machineLine } from "./machine.js";
import { checkSlice, type InputDistribution } from "./inputs.js";
import { type BenchCase, type CaseResult, isTiming, type SliceAccuracy, type Timing } from "./types.js";

/** What the run measured besides the grid: the inputs, and the options passed to our SageAttention. */
export interface BenchSettings {
  readonly inputs: InputDistribution;
  /** null: not passed, so the library's default. */
  readonly qkGranularity: QkGranularity | null;
  /** null: not passed, so the library's default. */
  readonly pvAccumulation: PvAccumulation | null;
}

/** The whole run as one JSON document (`--json`). */
export interface BenchDocument {
  readonly tool: "sageattn bench";
  readonly date: string;
  readonly machine: Machine;
  readonly threads: number;
  readonly settings: BenchSettings;
  readonly backends: ReadonlyArray<{ name: string; device: string; details: Readonly<Record<string, string>> }>;
  readonly rejected: ReadonlyArray<{ backend: string; reason: string; message: string }>;
  readonly notes: readonly string[];
  readonly results: readonly CaseResult[];
  readonly chart: string | null;
}

export const caseLabel = (c: BenchCase) =>
  `${formatShape([c.B, c.H, c.N, c.D])} ${c.dtype}${c.causal ? " causal" : ""}`;

/** Column values for one implementation on one case. */
interface Row {
  label: string;
  name: string;
  timing: Timing | undefined;
  error: string | undefined;
  accuracy: SliceAccuracy | null;
}

function rowsOf(r: CaseResult): Row[] {
  const rows: Row[] = [];
  for (const b of r.backends) {
    rows.push({
      label: "",
      name: `${b.backend} sage (ours)`,
      timing: isTiming(b.ours) ? b.ours : undefined,
      error: isTiming(b.ours) ? undefined : b.ours.error,
      accuracy: b.accuracy,
    });
    if (b.exact) {
      rows.push({
        label: "",
        name: `${b.backend} exact kernel`,
        timing: isTiming(b.exact) ? b.exact : undefined,
        error: isTiming(b.exact) ? undefined : b.exact.error,
        accuracy: null,
      });
    }
  }
  for (const p of r.peers) {
    rows.push(
      p.status === "ok"
        ? { label: "", name: p.peer, timing: p.timing, error: undefined, accuracy: p.accuracy }
        : { label: "", name: p.peer, timing: undefined, error: `${p.status}: ${p.error}`, accuracy: null },
    );
  }
  if (rows.length) rows[0].label = caseLabel(r.case);
  return rows;
}

/** The table a person reads: per case, ours first, then the exact kernel and the peers with ours/them ratios. */
export function formatTable(doc: BenchDocument): string {
  const out: string[] = [];
  out.push(`sageattn bench · ${machineLine(doc.machine)} · ${doc.threads} thread${doc.threads === 1 ? "" : "s"}`);
  const passed = (option: string | null) =>
    option === null ? "the library's default" : `${option} (our sage rows only)`;
  const bar = clearlyWrongBar(doc.settings);
  out.push(
    `  inputs ${doc.settings.inputs} · qkGranularity ${passed(doc.settings.qkGranularity)} · pvAccumulation ${
      passed(doc.settings.pvAccumulation)
    }`,
  );
  for (const b of doc.backends) {
    const details = Object.entries(b.details).map(([k, v]) => `${k} ${v}`).join(", ");
    out.push(`  ${b.name}: ${b.device}${details ? ` (${details})` : ""}`);
  }
  for (const r of doc.rejected) out.push(`  ${r.backend}: not run (${r.reason}: ${r.message})`);
  for (const n of doc.notes) out.push(`  note: ${n}`);
  const grids = [...new Set(doc.results.map((r) => r.grid))];
  for (const grid of grids) {
    const results = doc.results.filter((r) => r.grid === grid);
    const maxTops = Math.max(0, ...results.flatMap((r) => rowsOf(r).map((x) => x.timing?.tops ?? 0)));
    const giga = maxTops < 1;
    const unit = giga ? "GOPS" : "TOPS";
    const s = checkSlice(results[0].case);
    out.push("");
    out.push(
      `grid ${grid} · end to end, median after warm-up · accuracy vs exact float64 on ${s.heads} head(s) × last ${s.nq} queries`,
    );
    const header = ["shape", "implementation", "time", unit, "ours/this", "cos", "rel-L1"];
    const table: string[][] = [header];
    for (const r of results) {
      const rows = rowsOf(r);
      const oursTops = isTiming(r.backends[0]?.ours) ? r.backends[0].ours.tops : undefined;
      rows.forEach((row, i) => {
        const t = row.timing;
        const ratio = t && oursTops && i > 0 ? `${sig3(oursTops / t.tops)}×` : "";
        const acc = row.accuracy;
        table.push([
          row.label,
          row.name,
          t ? formatTime(t.ms) : "—",
          t ? sig3(giga ? t.tops * 1e3 : t.tops) : "—",
          ratio,
          acc
            ? `${Number.isFinite(acc.cosine) ? acc.cosine.toFixed(5) : "NaN"}${
              poorAccuracy(acc, doc.settings) ? " ✗" : ""
            }`
            : "",
          acc ? acc.relL1.toExponential(1) : "",
        ]);
        if (row.error) table.push(["", `  ↳ ${row.error}`, "", "", "", "", ""]);
      });
    }
    out.push(alignTable(table));
    if (
      results.some((r) =>
        [...r.backends.map((b) => b.accuracy), ...r.peers.map((p) => (p.status === "ok" ? p.accuracy : null))].some((
          a,
        ) => a && poorAccuracy(a, doc.settings))
      )
    ) {
      out.push(
        `✗ accuracy far from exact attention (cos < ${bar.minCosine} or rel-L1 > ${bar.maxRelL1}): that output is wrong, whatever its speed`,
      );
    }
  }
  return out.join("\n");
}

/** What the clearly-wrong bar depends on: the inputs, and the P·V mode passed to ours. */
export type BarSettings = Pick<BenchSettings, "inputs" | "pvAccumulation">;

const GAUSSIAN: BarSettings = { inputs: "gaussian", pvAccumulation: null };

/**
 * The bar under which an output is clearly wrong, for the inputs it was measured on and the P·V mode passed to ours.
 * A mode whose own exact bound is looser than `BOUNDS.exact` (fp8: e4m3's 3-bit significand, `BOUNDS.fp8`) loosens
 * the bar by as much, so the mode's expected error is not flagged; int8 keeps the f16 modes' bar.
 */
export function clearlyWrongBar(s: BarSettings): { readonly minCosine: number; readonly maxRelL1: number } {
  const bar = s.inputs === "massive" ? BOUNDS.clearlyWrongMassive : BOUNDS.clearlyWrong;
  const own = exactBound(false, s.pvAccumulation ?? undefined);
  if (own === BOUNDS.exact) return bar;
  const tidy = (x: number) => Number(x.toPrecision(10)); // 0.9982, not 0.9981999999999999
  return {
    minCosine: tidy(bar.minCosine - (BOUNDS.exact.minCosine - own.minCosine)),
    maxRelL1: tidy(bar.maxRelL1 + (own.maxRelL1 - BOUNDS.exact.maxRelL1)),
  };
}

/**
 * Far from exact: docs/DESIGN.md §2's bar is `BOUNDS.exact`; this flags anything clearly off (`clearlyWrongBar`, NaN
 * included).
 */
export const poorAccuracy = (a: SliceAccuracy, settings: BarSettings = GAUSSIAN) => {
  const bar = clearlyWrongBar(settings);
  return !(a.cosine >= bar.minCosine) || !(a.relL1 <= bar.maxRelL1);
};

/** Left-aligns the first two columns, right-aligns the numbers; an error row's long text is not padded. */
function alignTable(rows: string[][]): string {
  const isNote = (r: string[]) => r[1].startsWith("  ↳");
  const widths = rows[0].map((_, i) => Math.max(...rows.filter((r) => !isNote(r)).map((r) => r[i].length)));
  return rows
    .map((r) => {
      if (isNote(r)) return `${"".padEnd(widths[0])}  ${r[1]}`;
      return r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ").trimEnd();
    })
    .join("\n");
}
