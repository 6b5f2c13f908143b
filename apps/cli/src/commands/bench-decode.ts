import { availableParallelism, cpus } from "node:os";
import { parseArgs } from "node:util";
import {
  BOUNDS,
  createKvCache,
  type HostTensor,
  hostTensor,
  KV_VALUE_FORMATS,
  type KvCache,
  type KvValueFormat,
} from "@sageattn/core";
import { useCpuThreads } from "../bench/backends.js";
import { formatTime, sig3 } from "../bench/format.js";
import { describeMachine, type Machine, machineLine } from "../bench/machine.js";
import { openOrtDecode } from "../bench/peers/ort-decode.js";
import { DEFAULT_PLAN, measure, timed } from "../bench/timing.js";
import { EXIT_FAILURE, EXIT_OK, reportError, UsageError } from "../errors.js";

export const BENCH_DECODE_USAGE =
  `Usage: sageattn bench --decode [--backend NAME] [--nk 1K,4K,32K,128K] [--nq 1,4] [--values f16|int8] [--peers]
                              [--threads N] [--json]

Times decode on a quantized KV cache (createKvCache): per step, appending the step's Nq new K/V rows then attending
(causal when Nq > 1), and attending alone. GB/s = bytes the cache holds for its rows (what a step must read) / time.
Inputs are f32, B=1 H=32 Hkv=8 D=128 unless told otherwise. Each number is the median of several runs after warm-up.

Options:
  --backend NAME   cuda, webgpu, cpu-simd or js (default: the best available with a KV cache)
  --nk LIST        cache lengths, e.g. 1K,4K,32K,128K (the default; K = 1024)
  --nq LIST        query rows per step (default 1,4)
  --values FORMAT  how the cache keeps V: f16 (the default) or int8 (INT8 with an f32 scale per token, about half
                   of V's bytes; createKvCache's valueFormat). A backend without int8 values says so and exits 1
  --batch B --heads H --heads-kv HKV --head-dim D    the shape (default 1, 32, 8, 128)
  --peers          also time onnxruntime-node's CPU MultiHeadAttention (no GQA: its past holds all H heads) and
                   GroupQueryAttention with past K/V on the same inputs, past in and present out through the JS API
                   each step as a JS caller runs them; skipped where a past K/V would pass 1 GiB
  --threads N      threads for cpu-simd and the peer (default: all cores, ${
    availableParallelism?.() ?? cpus().length
  } here)
  --json           print one JSON document on stdout (no table)
  -h, --help       show this help

Without a terminal on stderr, each finished row is one JSON line there.
Example:
  sageattn bench --decode --nk 32K --peers`;

export interface DecodeArgs {
  readonly help: boolean;
  readonly backend: string | undefined;
  readonly nk: readonly number[];
  readonly nq: readonly number[];
  /** The cache's `valueFormat` (--values). */
  readonly valueFormat: KvValueFormat;
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly D: number;
  readonly peers: boolean;
  readonly threads: number | undefined;
  readonly json: boolean;
}

function sizes(flag: string, text: string): number[] {
  const xs = text.split(",").map((t) => {
    const m = /^(\d+)([kK]?)$/.exec(t.trim());
    return m ? Number(m[1]) * (m[2] ? 1024 : 1) : NaN;
  });
  if (!xs.every((x) => Number.isInteger(x) && x > 0)) {
    throw new UsageError(`${flag} takes whole numbers (K = 1024) separated by commas, got ${text}`);
  }
  return xs;
}

function whole(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const x = Number(text);
  if (!Number.isInteger(x) || x < 1) throw new UsageError(`${flag} must be a whole number from 1, got ${text}`);
  return x;
}

export function parseDecodeArgs(argv: readonly string[]): DecodeArgs {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== "--decode"),
    strict: true,
    allowPositionals: false,
    options: {
      backend: { type: "string" },
      nk: { type: "string" },
      nq: { type: "string" },
      values: { type: "string" },
      batch: { type: "string" },
      heads: { type: "string" },
      "heads-kv": { type: "string" },
      "head-dim": { type: "string" },
      peers: { type: "boolean" },
      threads: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const H = whole("--heads", values.heads, 32), Hkv = whole("--heads-kv", values["heads-kv"], 8);
  if (H % Hkv !== 0) throw new UsageError(`--heads (${H}) must be a multiple of --heads-kv (${Hkv})`);
  const valueFormat = (values.values ?? "f16") as KvValueFormat;
  if (!KV_VALUE_FORMATS.includes(valueFormat)) {
    throw new UsageError(`--values must be one of ${KV_VALUE_FORMATS.join(", ")}, got ${valueFormat}`);
  }
  return {
    help: values.help ?? false,
    backend: values.backend,
    nk: sizes("--nk", values.nk ?? "1K,4K,32K,128K"),
    nq: sizes("--nq", values.nq ?? "1,4"),
    valueFormat,
    B: whole("--batch", values.batch, 1),
    H,
    Hkv,
    D: whole("--head-dim", values["head-dim"], 128),
    peers: values.peers ?? false,
    threads: values.threads === undefined ? undefined : whole("--threads", values.threads, 1),
    json: values.json ?? false,
  };
}

/** One row of the decode table. */
export interface DecodeRow {
  readonly backend: string;
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly D: number;
  readonly nk: number;
  readonly nq: number;
  /** Append Nq rows, then attend: ms per step (median). */
  readonly stepMs: number;
  readonly attendMs: number;
  /** Bytes the cache holds for nk rows (K, V and their scales), the reads of one attend. */
  readonly cacheBytes: number;
  readonly attendGBs: number;
  /** Cosine of the attend output against exact attention in float64 (on the first batch entry, every head). */
  readonly cosine: number;
  /** onnxruntime-node's MultiHeadAttention and GroupQueryAttention with past K/V, one decode step each (with --peers). */
  readonly peers?: readonly PeerRow[];
}

export type PeerRow = { name: string; stepMs: number; readBytes: number; GBs: number; cosine: number } | {
  name: string;
  skipped: string;
};

/**
 * Bytes per (row, kv head) that a backend's cache holds: INT8 K (1 byte per channel) and an f32 K scale per 64 rows,
 * then V: 16 bits per channel, or with int8 values one byte per channel and an f32 scale per row. cpu-simd's V
 * is 16-bit fixed point with an f32 scale per (64 rows, channel) besides.
 */
export function cacheBytesPerRow(backend: string, D: number, valueFormat: KvValueFormat = "f16"): number {
  const k = D + 4 / 64;
  if (valueFormat === "int8") return k + D + 4;
  if (backend === "cpu-simd") return k + 2 * D + (4 * D) / 64;
  return k + 2 * D;
}

/** Deterministic values in about [−2, 2], with a per-channel offset for K (the case smoothing is for). */
function fill(out: Float32Array, seed: number, D: number, bias: number): void {
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32 + ((Math.imul(s ^ (s >>> 13), 2246822519) >>> 0) / 2 ** 32) - 1;
    out[i] = 2 * u + bias * Math.sin((i % D) * 1.7);
  }
}

/** Cache rows [B, Hkv, n, D] HND, f32: K and V. */
function rows(B: number, Hkv: number, n: number, D: number, seed: number) {
  const k = new Float32Array(B * Hkv * n * D), v = new Float32Array(B * Hkv * n * D);
  fill(k, seed, D, 3);
  fill(v, seed + 7, D, 0);
  return { k, v };
}

/** Exact attention in float64 for batch entry 0: q [H, nq, D], keys/values per kv head [Hkv][len][D]. */
function exactRows(
  q: Float32Array,
  K: Float32Array[],
  V: Float32Array[],
  H: number,
  Hkv: number,
  nq: number,
  len: number,
  D: number,
  causal: boolean,
): Float64Array {
  const out = new Float64Array(H * nq * D);
  const group = H / Hkv, scale = 1 / Math.sqrt(D);
  const s = new Float64Array(len);
  for (let h = 0; h < H; h++) {
    const k = K[Math.floor(h / group)], v = V[Math.floor(h / group)];
    for (let i = 0; i < nq; i++) {
      const limit = causal ? len - nq + i + 1 : len;
      let max = -Infinity;
      for (let j = 0; j < limit; j++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(h * nq + i) * D + d] * k[j * D + d];
        s[j] = dot * scale;
        if (s[j] > max) max = s[j];
      }
      let sum = 0;
      for (let j = 0; j < limit; j++) sum += s[j] = Math.exp(s[j] - max);
      const o = (h * nq + i) * D;
      for (let j = 0; j < limit; j++) for (let d = 0; d < D; d++) out[o + d] += (s[j] / sum) * v[j * D + d];
    }
  }
  return out;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

/** Rows of batch entry 0 of a [B, H, N, D] HND array, as [H, N, D]. */
const firstEntry = (x: Float32Array, H: number, N: number, D: number) => x.subarray(0, H * N * D);

const PREFILL_CHUNK = 8192;
const PEER_PAST_LIMIT = 2 ** 30;

/** Times one (nk, nq) on a fresh cache; `keep` holds batch entry 0's K/V for the exact check and the peer. */
async function decodeRow(
  a: DecodeArgs,
  backend: string | undefined,
  nk: number,
  nq: number,
  threads: number,
  onStep: (s: string) => void,
): Promise<DecodeRow> {
  const { B, H, Hkv, D } = a;
  const plan = DEFAULT_PLAN;
  const steps = plan.warmup + plan.maxRuns + 1;
  const cache: KvCache = await createKvCache({
    backend,
    batch: B,
    headsKv: Hkv,
    headDim: D,
    capacity: nk + steps * nq,
    dtype: "f32",
    valueFormat: a.valueFormat,
  });
  try {
    const K = Array.from({ length: Hkv }, () => new Float32Array(nk * D));
    const V = Array.from({ length: Hkv }, () => new Float32Array(nk * D));
    for (let r0 = 0; r0 < nk; r0 += PREFILL_CHUNK) {
      onStep(`prefill ${r0}/${nk}`);
      const n = Math.min(PREFILL_CHUNK, nk - r0);
      const c = rows(B, Hkv, n, D, 1 + r0);
      for (let h = 0; h < Hkv; h++) {
        K[h].set(c.k.subarray(h * n * D, (h + 1) * n * D), r0 * D);
        V[h].set(c.v.subarray(h * n * D, (h + 1) * n * D), r0 * D);
      }
      await cache.append(hostTensor(c.k, [B, Hkv, n, D]), hostTensor(c.v, [B, Hkv, n, D]));
    }
    const qData = new Float32Array(B * H * nq * D);
    fill(qData, 99, D, 0);
    const q = hostTensor(qData, [B, H, nq, D]);
    const causal = nq > 1;
    onStep("attend");
    let last: HostTensor | undefined;
    const attend = await measure(
      () => timed(async () => (last = (await cache.attend(q, { causal })).output as HostTensor)),
      plan,
      onStep,
    );
    const cos = cosine(
      firstEntry(last!.data as Float32Array, H, nq, D),
      exactRows(qData, K, V, H, Hkv, nq, nk, D, causal),
    );
    const next = rows(B, Hkv, nq, D, 12345);
    const kNew = hostTensor(next.k, [B, Hkv, nq, D]), vNew = hostTensor(next.v, [B, Hkv, nq, D]);
    onStep("append + attend");
    const step = await measure(
      () =>
        timed(async () => {
          await cache.append(kNew, vNew);
          await cache.attend(q, { causal });
        }),
      plan,
      onStep,
    );
    const cacheBytes = B * Hkv * nk * cacheBytesPerRow(cache.backend, D, a.valueFormat);
    const row: DecodeRow = {
      backend: cache.backend,
      B,
      H,
      Hkv,
      D,
      nk,
      nq,
      stepMs: step.ms,
      attendMs: attend.ms,
      cacheBytes,
      attendGBs: cacheBytes / attend.ms / 1e6,
      cosine: cos,
    };
    if (!a.peers) return row;
    const peers: PeerRow[] = [];
    for (const op of ["mha", "gqa"] as const) {
      peers.push(await peerRow(op, a, K, V, qData, next, nk, nq, threads, onStep));
    }
    return { ...row, peers };
  } finally {
    await cache.dispose();
  }
}

/**
 * onnxruntime-node MultiHeadAttention ("mha": past K/V of all H heads) or GroupQueryAttention ("gqa": Hkv heads) with
 * past K/V over the same rows (batch entry 0's, repeated over B).
 */
async function peerRow(
  op: "mha" | "gqa",
  a: DecodeArgs,
  K: Float32Array[],
  V: Float32Array[],
  qData: Float32Array,
  next: { k: Float32Array; v: Float32Array },
  nk: number,
  nq: number,
  threads: number,
  onStep: (s: string) => void,
): Promise<PeerRow> {
  const { B, H, Hkv, D } = a;
  const name = `onnxruntime-node ${op === "mha" ? "MHA" : "GQA"} + past (${threads}T)`;
  const kvHeads = op === "mha" ? H : Hkv;
  const past = B * kvHeads * nk * D * 4;
  if (past > PEER_PAST_LIMIT) {
    return { name, skipped: `its past K/V would take ${(past / 2 ** 30).toFixed(1)} GiB each` };
  }
  onStep(`peer ${op}: inputs`);
  // Output head o of the peer's K/V reads our kv head src(o): MHA repeats each kv head over its query heads.
  const src = (o: number) => (op === "mha" ? Math.floor(o / (H / Hkv)) : o);
  const pastKey = new Float32Array(B * kvHeads * nk * D), pastValue = new Float32Array(B * kvHeads * nk * D);
  const bsh = (x: Float32Array, heads: number, outHeads: number, per: (h: number) => number) => {
    // [B, heads, nq, D] → [B, nq, outHeads·D], output head h taking row source per(h)
    const out = new Float32Array(B * nq * outHeads * D);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < outHeads; h++) {
        for (let i = 0; i < nq; i++) {
          out.set(
            x.subarray(((b * heads + per(h)) * nq + i) * D, ((b * heads + per(h)) * nq + i + 1) * D),
            ((b * nq + i) * outHeads + h) * D,
          );
        }
      }
    }
    return out;
  };
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < kvHeads; h++) {
      pastKey.set(K[src(h)], (b * kvHeads + h) * nk * D);
      pastValue.set(V[src(h)], (b * kvHeads + h) * nk * D);
    }
  }
  try {
    const s = await openOrtDecode(
      op,
      { B, H, Hkv, Nq: nq, past: nk, D, causal: nq > 1, threads },
      {
        query: bsh(qData, H, H, (h) => h),
        key: bsh(next.k, Hkv, kvHeads, src),
        value: bsh(next.v, Hkv, kvHeads, src),
        pastKey,
        pastValue,
      },
    );
    try {
      onStep(`peer ${op}`);
      const t = await measure(() => timed(() => s.step()), DEFAULT_PLAN, onStep);
      // Its output attends over nk + nq rows (the past and the new ones): check it against exact on the same rows.
      const Kx = K.map((k, h) => concatRows(k, next.k.subarray(h * nq * D, (h + 1) * nq * D)));
      const Vx = V.map((v, h) => concatRows(v, next.v.subarray(h * nq * D, (h + 1) * nq * D)));
      const got = s.output();
      const hnd = new Float32Array(H * nq * D);
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < nq; i++) hnd.set(got.subarray((i * H + h) * D, (i * H + h + 1) * D), (h * nq + i) * D);
      }
      const cos = cosine(hnd, exactRows(qData, Kx, Vx, H, Hkv, nq, nk + nq, D, nq > 1));
      return { name, stepMs: t.ms, readBytes: 2 * past, GBs: (2 * past) / t.ms / 1e6, cosine: cos };
    } finally {
      await s.release();
    }
  } catch (e) {
    return { name, skipped: String((e as Error).message ?? e).split("\n")[0].slice(0, 200) };
  }
}

function concatRows(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** How the report's header names a value format. */
const VALUES_LINE: Readonly<Record<KvValueFormat, string>> = {
  f16: "V in f16",
  int8: "V in int8 (a scale per token)",
};

/** The table printed on stdout. */
export function formatDecodeTable(
  rows: readonly DecodeRow[],
  machine: Machine,
  threads: number,
  valueFormat: KvValueFormat = "f16",
): string {
  const head = [
    "backend",
    "B×H/Hkv×D",
    "Nk",
    "Nq",
    "append+attend",
    "attend",
    "attend GB/s",
    "cos vs exact",
    "ORT MHA step",
    "ORT GQA step",
    "ours vs best ORT",
  ];
  const peerCell = (
    p: PeerRow | undefined,
  ) => (!p ? "—" : "stepMs" in p ? `${formatTime(p.stepMs)} (${sig3(p.GBs)} GB/s)` : `skipped (${p.skipped})`);
  const body = rows.map((r) => {
    const timed = (r.peers ?? []).flatMap((p) => ("stepMs" in p ? [p.stepMs] : []));
    return [
      r.backend,
      `${r.B}×${r.H}/${r.Hkv}×${r.D}`,
      String(r.nk),
      String(r.nq),
      formatTime(r.stepMs),
      formatTime(r.attendMs),
      sig3(r.attendGBs),
      r.cosine.toFixed(5),
      peerCell(r.peers?.[0]),
      peerCell(r.peers?.[1]),
      timed.length ? `${sig3(Math.min(...timed) / r.stepMs)}×` : "—",
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [
    `decode on ${machineLine(machine)}, ${threads} thread${threads === 1 ? "" : "s"}, ${VALUES_LINE[valueFormat]}`,
    "",
    line(head),
    ...body.map(line),
  ].join("\n");
}

/** `sageattn bench --decode`. Returns the exit status. */
export async function benchDecodeCommand(argv: string[]): Promise<number> {
  try {
    const a = parseDecodeArgs(argv);
    if (a.help) {
      process.stdout.write(BENCH_DECODE_USAGE + "\n");
      return EXIT_OK;
    }
    const threads = a.threads ?? (typeof availableParallelism === "function" ? availableParallelism() : cpus().length);
    if (a.threads !== undefined) await useCpuThreads(a.threads);
    const tty = process.stderr.isTTY === true && !a.json;
    const rows: DecodeRow[] = [];
    for (const nk of a.nk) {
      for (const nq of a.nq) {
        const row = await decodeRow(a, a.backend, nk, nq, threads, (s) => {
          if (tty) process.stderr.write(`\r\x1b[2KNk ${nk} Nq ${nq}: ${s}`);
        });
        rows.push(row);
        if (tty) process.stderr.write("\r\x1b[2K");
        else if (!a.json) process.stderr.write(JSON.stringify(row) + "\n");
      }
    }
    const machine = describeMachine();
    if (a.json) {
      process.stdout.write(
        JSON.stringify(
          {
            tool: "sageattn bench --decode",
            date: new Date().toISOString(),
            machine,
            threads,
            valueFormat: a.valueFormat,
            rows,
          },
          null,
          2,
        ) + "\n",
      );
    } else process.stdout.write(formatDecodeTable(rows, machine, threads, a.valueFormat) + "\n");
    return rows.every((r) => r.cosine >= BOUNDS.clearlyWrong.minCosine) ? EXIT_OK : EXIT_FAILURE;
  } catch (e) {
    return reportError("bench", e);
  }
}
