import { writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import type { AttentionBackend } from "@sageattn/core";
import { chooseBackends, useCpuThreads } from "../bench/backends.js";
import { panelsFrom, renderChart } from "../bench/chart.js";
import { caseKey, type Grid, gridFor, type GridName } from "../bench/grid.js";
import {
  type BenchInputs,
  checkSlice,
  exactOnSlice,
  makeInputs,
  sliceAccuracy,
  sliceHND,
  sliceNHD,
} from "../bench/inputs.js";
import { describeMachine, machineLine } from "../bench/machine.js";
import { benchBackend, failure, topsAt } from "../bench/measure-backend.js";
import { onnxruntimeNode, onnxruntimeWeb } from "../bench/peers/onnxruntime.js";
import type { Peer, PeerLoader } from "../bench/peers/peer.js";
import { tfjsWasm } from "../bench/peers/tfjs-wasm.js";
import { torchSdpa } from "../bench/peers/torch-sdpa.js";
import { Progress } from "../bench/progress.js";
import { type BenchDocument, caseLabel, formatTable, poorAccuracy } from "../bench/report.js";
import { DEFAULT_PLAN, measure, timed } from "../bench/timing.js";
import type { BenchCase, CaseResult, PeerResult } from "../bench/types.js";
import { EXIT_FAILURE, EXIT_OK, reportError, UsageError } from "../errors.js";
import { checkWritable } from "../io/tensor-io.js";
import { BENCH_USAGE, parseBenchArgs } from "./bench-args.js";
import { benchDecodeCommand } from "./bench-decode.js";

/** Peers for CPU grids, in the order they appear in the table. */
const CPU_PEERS: readonly PeerLoader[] = [onnxruntimeNode, onnxruntimeWeb, tfjsWasm];

interface Group {
  readonly grid: Grid;
  readonly backends: AttentionBackend[];
}

/** Backends that share a grid are timed on the same inputs, one case at a time. */
function groupByGrid(
  backends: readonly AttentionBackend[],
  grid: GridName | undefined,
  keep: (c: BenchCase) => boolean,
): Group[] {
  const groups = new Map<string, Group>();
  for (const b of backends) {
    const full = gridFor(b.name, grid);
    const g = { ...full, cases: full.cases.filter(keep) };
    const group = groups.get(g.name) ?? { grid: g, backends: [] };
    group.backends.push(b);
    groups.set(g.name, group);
  }
  return [...groups.values()];
}

/** Loads each peer library once; a library that cannot load is reported unavailable on every case. */
class PeerPool {
  private readonly loaded = new Map<PeerLoader, Promise<Peer | Error>>();
  constructor(private readonly threads: number) {}

  get(loader: PeerLoader): Promise<Peer | Error> {
    let p = this.loaded.get(loader);
    if (!p) {
      p = loader.load(this.threads).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
      this.loaded.set(loader, p);
    }
    return p;
  }

  async dispose(): Promise<void> {
    for (const p of this.loaded.values()) {
      const peer = await p;
      if (!(peer instanceof Error)) await peer.dispose();
    }
  }
}

async function benchPeer(
  loader: PeerLoader,
  pool: PeerPool,
  inputs: BenchInputs,
  exactSlice: () => Float64Array,
  onRun: (what: string) => void,
): Promise<PeerResult> {
  const peer = await pool.get(loader);
  if (peer instanceof Error) return { peer: loader.name, status: "unavailable", error: firstLine(peer.message) };
  let session;
  try {
    session = await peer.open(inputs);
  } catch (e) {
    return { peer: peer.name, status: "failed", error: firstLine(failure(e).error) };
  }
  try {
    const { ms, runs } = await measure(() => timed(() => session.run()), DEFAULT_PLAN, onRun);
    const c = inputs.case;
    const s = checkSlice(c);
    const out = session.output();
    const slice = out.layout === "NHD"
      ? sliceNHD(out.data, c, s.heads, s.q0, s.nq)
      : sliceHND(out.data, c, s.heads, s.q0, s.nq);
    return {
      peer: peer.name,
      status: "ok",
      timing: { ms, tops: topsAt(inputs, ms), runs },
      accuracy: sliceAccuracy(slice, exactSlice()),
    };
  } catch (e) {
    return { peer: peer.name, status: "failed", error: firstLine(failure(e).error) };
  } finally {
    await session.release().catch(() => undefined);
  }
}

const firstLine = (s: string) => s.split("\n")[0].slice(0, 300);

/** `sageattn bench`. Returns the exit status. */
export async function benchCommand(argv: string[]): Promise<number> {
  if (argv.includes("--decode")) return benchDecodeCommand(argv);
  let peers: PeerPool | undefined;
  try {
    const args = parseBenchArgs(argv);
    if (args.help) {
      process.stdout.write(BENCH_USAGE + "\n");
      return EXIT_OK;
    }
    if (args.chart) checkWritable(args.chart);
    const threads = args.threads ??
      (typeof availableParallelism === "function" ? availableParallelism() : cpus().length);
    const notes: string[] = [];
    const refused = args.threads === undefined ? undefined : await useCpuThreads(args.threads);
    if (refused) notes.push(`--threads ${args.threads} not applied to cpu-simd: ${refused}`);
    const chosen = await chooseBackends(args.backend);
    const grid = args.grid ?? (chosen.onlyReference ? "quick" : undefined);
    if (chosen.onlyReference && !args.grid) {
      notes.push("only the slow js reference backend loaded, so the quick grid ran (--grid to choose another)");
    }
    const groups = groupByGrid(
      chosen.backends,
      grid,
      (c) => (!args.sizes || args.sizes.includes(c.N)) && (!args.headDims || args.headDims.includes(c.D)),
    );
    if (groups.every((g) => g.grid.cases.length === 0)) {
      // Nothing would be measured: say what the grid has, rather than print an empty table and succeed.
      const all = chosen.backends.flatMap((b) => gridFor(b.name, grid).cases);
      const list = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b).join(", ");
      throw new UsageError(
        `no case of the ${[...new Set(groups.map((g) => g.grid.name))].join("/")} grid matches ${
          [args.sizes && `--sizes ${args.sizes.join(",")}`, args.headDims && `--head-dims ${args.headDims.join(",")}`]
            .filter(Boolean).join(" ")
        } (its sequence lengths: ${list(all.map((c) => c.N))}; head dims: ${list(all.map((c) => c.D))})`,
      );
    }
    const pool = (peers = new PeerPool(threads));
    const cpuPeers = (g: Group) => (args.peers && g.grid.peers === "cpu" ? CPU_PEERS : []);
    const torchPeer = (g: Group) => args.peers && g.grid.peers === "torch";

    const steps = groups.reduce(
      (n, g) => n + g.grid.cases.length * (1 + g.backends.length * 2 + cpuPeers(g).length + (torchPeer(g) ? 1 : 0)),
      0,
    );
    const progress = Progress.forTerminal(args.json, steps);
    const results: CaseResult[] = [];
    for (const g of groups) {
      // torch runs first, alone on the GPU, one python process per shape.
      const cudaLib = g.backends.find((b) => b.name === "cuda")?.details.library;
      const torch = torchPeer(g)
        ? await torchSdpa(
          g.grid.cases,
          { warmup: 5, runs: 20 },
          (c) => progress.next(`${caseLabel(c)}: torch SDPA (python3)`),
          undefined,
          undefined,
          cudaLib,
        )
        : undefined;
      for (const c of g.grid.cases) {
        const label = caseLabel(c);
        progress.next(`${label}: inputs`);
        const inputs = makeInputs(c, args.inputs);
        let exact: Float64Array | undefined;
        const exactSlice = () => (exact ??= exactOnSlice(inputs));
        const backends = [];
        for (const b of g.backends) {
          backends.push(
            await benchBackend(
              b,
              inputs,
              exactSlice,
              DEFAULT_PLAN,
              (step) => progress.next(`${label}: ${step}`),
              (what) => progress.detail(what),
              { qkGranularity: args.qkGranularity, pvAccumulation: args.pvAccumulation },
            ),
          );
        }
        const peerResults: PeerResult[] = [...(torch?.get(caseKey(c)) ?? [])];
        for (const loader of cpuPeers(g)) {
          progress.next(`${label}: ${loader.name}`);
          peerResults.push(await benchPeer(loader, pool, inputs, exactSlice, (what) => progress.detail(what)));
        }
        results.push({ case: c, grid: g.grid.name, backends, peers: peerResults });
        // Without a terminal, each finished case is one JSON line on stderr: a run cut short keeps what it measured.
        if (!process.stderr.isTTY && !args.json) process.stderr.write(JSON.stringify(results.at(-1)) + "\n");
      }
      // The python peers get shapes only, not our inputs or options.
      if (torch && args.inputs !== "gaussian") {
        notes.push(`grid ${g.grid.name}: the python peers draw their own Gaussian inputs, not ${args.inputs} ones`);
      }
      for (const [flag, given] of [["--qk-granularity", args.qkGranularity], ["--pv", args.pvAccumulation]]) {
        if (torch && given) {
          notes.push(`grid ${g.grid.name}: the python peers (sageattn C ABI rows included) run without ${flag}`);
        }
      }
      if (args.peers && g.grid.peers === "none") {
        notes.push(
          `grid ${g.grid.name}: no peer is wired for it yet (onnxruntime-web's WebGPU MultiHeadAttention would be the one)`,
        );
      }
    }
    progress.done();

    const machine = describeMachine();
    let chart: string | null = null;
    if (args.chart) {
      const svg = renderChart(
        panelsFrom(results),
        "SageAttention throughput by sequence length",
        `${machineLine(machine)} · ${threads} thread${threads === 1 ? "" : "s"}`,
      );
      writeFileSync(args.chart, svg);
      chart = args.chart;
    }
    const doc: BenchDocument = {
      tool: "sageattn bench",
      date: new Date().toISOString(),
      machine,
      threads,
      settings: {
        inputs: args.inputs,
        qkGranularity: args.qkGranularity ?? null,
        pvAccumulation: args.pvAccumulation ?? null,
      },
      backends: chosen.backends.map((b) => ({ name: b.name, device: b.device, details: { ...b.details } })),
      rejected: chosen.rejected,
      notes,
      results,
      chart,
    };
    if (args.json) process.stdout.write(JSON.stringify(doc, null, 2) + "\n");
    else process.stdout.write(formatTable(doc) + (chart ? `\n\nchart written to ${chart}` : "") + "\n");
    // A failed run of ours, or an output far from exact attention, fails the command (its numbers mean nothing).
    const oursFailed = results.some((r) =>
      r.backends.some((b) => !("ms" in b.ours) || (b.accuracy !== null && poorAccuracy(b.accuracy, doc.settings)))
    );
    return oursFailed ? EXIT_FAILURE : EXIT_OK;
  } catch (e) {
    return reportError("bench", e);
  } finally {
    await peers?.dispose();
  }
}
