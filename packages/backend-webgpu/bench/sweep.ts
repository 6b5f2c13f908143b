// table.ts --sweep: every INT8 kernel configuration timed on the same tensors, so one GPU run picks the tile for
// tiles.ts. Configurations: tiles.ts's int8Tiles (query rows × keys per tile, rows per invocation, keys per P·V step)
// that fit the device, plus the subgroup row maxima ("+sg") on the 64-key tiles at the default keys per P·V step
// where the device passes the subgroup check (the log says which, or subgroupCheck's reason).
// Each is a backend made with `makeWith({ device, tile, subgroups })` on one shared GPUDevice, called directly (not
// through `attention()`) on GPUBuffers adopted once, non-causal, timed by the slope of bench/timing.ts.
// A batch's end is only seen on Deno's poll tick (≈ 11 ms), so a sample is off by up to a tick over the batch's
// length: 100 ms batches rank coarsely, 300–400 ms ones finely. Hence three stages:
//   coarse: every configuration at the first size, 2 pairs of ≈ 100 ms batches;
//   fine: the `top` fastest of those (the default and its +sg twin always among them) again, 4 pairs of ≈ 300 ms,
//     the default again at the end to show drift;
//   later sizes: the `top` fastest of the fine stage (and the default's +sg twin), 3 pairs of ≈ 400 ms (at least 4
//     calls), the default again last.
// Each timed output is checked with core's checkOutput (the sage oracle of the backend's P·V mode and exact
// attention, BOUNDS) on one sub-problem: the last query head's last 128-row Q block against all its keys. That block
// is a whole Q quantization block and keeps every key, so its oracle is those rows of the full problem's.
import { BOUNDS, encode16, hostTensor, makeQKV, Q_BLOCK, resolveProblem, toCanonicalF32 } from "@sageattn/core";
import { checkOutput } from "@sageattn/core/conformance/check";
import { Effect } from "effect";
import { makeWith, type WebGPUBackend } from "../src/index.ts";
import { INT8_PV_KEYS, INT8_ROWS_PER_INVOCATION, int8TileName, int8Tiles, paddedHeadDim } from "../src/tiles.ts";
import { type PerCall, timePerCall } from "./timing.ts";

export interface SweepOptions {
  readonly sizes: readonly number[];
  readonly h: number;
  readonly d: number;
  /** Configurations timed at the sizes after the first: the fastest there. */
  readonly top: number;
  /** Only these configurations ("64x64r4p4", "…+sg" for subgroups), in this order; default: every one. */
  readonly only?: readonly string[];
}

interface Config {
  readonly tile: string;
  readonly subgroups: boolean;
}

const nameOf = (c: Config) => `${c.tile}${c.subgroups ? "+sg" : ""}`;

interface Result {
  readonly n: number;
  readonly config: string;
  readonly timing?: PerCall;
  readonly check?: { ok: boolean; detail: string };
  readonly error?: string;
  /** The default configuration's second run at this size. */
  readonly again?: boolean;
  readonly stage: Stage;
}

type Stage = "coarse" | "fine";

const TIMINGS = {
  coarse: { batches: 2, batchMs: 100, minK: 2 },
  fine: { batches: 4, batchMs: 300, minK: 2 },
  later: { batches: 3, batchMs: 400, minK: 4 },
};

/** Bytes [offset, offset + bytes) of `buffer`, read back. */
async function readBack(device: GPUDevice, buffer: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
  const staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, offset, staging, 0, bytes);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0);
  staging.destroy();
  return out;
}

/** The inputs of one size on `device`, and the checked sub-problem's rows. */
interface SizeInputs {
  readonly buffers: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; out: GPUBuffer };
  /** The sub-problem (last head, rows r0 … n − 1, all keys) as f16 host tensors. */
  readonly sub: { q: Uint16Array; k: Uint16Array; v: Uint16Array; r0: number };
}

function inputsOf(device: GPUDevice, n: number, h: number, d: number): SizeInputs {
  const { q, k, v } = makeQKV({ B: 1, Hq: h, Hkv: h, Nq: n, Nk: n, D: d }, "gaussian", 7);
  const bits = [q, k, v].map((x) => encode16(x, "f16") as Uint16Array<ArrayBuffer>);
  const buffer = (data?: Uint16Array<ArrayBuffer>) => {
    const b = device.createBuffer({
      size: h * n * d * 2,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    if (data) device.queue.writeBuffer(b, 0, data);
    return b;
  };
  const r0 = Math.floor((n - 1) / Q_BLOCK) * Q_BLOCK;
  const head = (x: Uint16Array, from: number) => x.slice(((h - 1) * n + from) * d, h * n * d);
  return {
    buffers: { q: buffer(bits[0]), k: buffer(bits[1]), v: buffer(bits[2]), out: buffer() },
    sub: { q: head(bits[0], r0), k: head(bits[1], 0), v: head(bits[2], 0), r0 },
  };
}

/** The checked block of `out` against core's oracles and bounds. */
async function check(
  device: GPUDevice,
  backend: WebGPUBackend,
  x: SizeInputs,
  n: number,
  h: number,
  d: number,
): Promise<{ ok: boolean; detail: string }> {
  const rows = n - x.sub.r0;
  const raw = await readBack(device, x.buffers.out, ((h - 1) * n + x.sub.r0) * d * 2, rows * d * 2);
  const t = (data: Uint16Array, len: number) => hostTensor(data, [1, 1, len, d], { dtype: "f16" });
  const [q, k, v] = [t(x.sub.q, rows), t(x.sub.k, n), t(x.sub.v, n)];
  const problem = Effect.runSync(resolveProblem(q, k, v, {}));
  const r = checkOutput({
    problem,
    q: toCanonicalF32(q),
    k: toCanonicalF32(k),
    v: toCanonicalF32(v),
    output: toCanonicalF32(t(new Uint16Array(raw), rows)),
    capabilities: backend.capabilities,
    exact: "normal",
  });
  const detail = `vs sage (${r.pvOracle}) rel-L1 ${r.vsSage.relL1.toExponential(2)}, vs exact cos ${
    r.vsExact?.cosine.toFixed(5)
  }`;
  return { ok: r.ok, detail: r.ok ? detail : `FAILED: ${r.failures.join("; ")}` };
}

/** Times one configuration at one size (its own backend on `device`, the shared buffers adopted), then checks it. */
async function runConfig(
  device: GPUDevice,
  c: Config,
  x: SizeInputs,
  n: number,
  o: SweepOptions,
  timingOptions: { batches: number; batchMs: number; minK: number; warmupMs: number },
  stage: Stage,
): Promise<Result> {
  const config = nameOf(c);
  let backend: WebGPUBackend | undefined;
  try {
    backend = await Effect.runPromise(makeWith({ device, tile: c.tile, subgroups: c.subgroups }));
    if (c.subgroups && !backend.details.subgroups?.startsWith("on")) {
      return { n, config, stage, error: `subgroups ${backend.details.subgroups}` };
    }
    const shape = [1, o.h, n, o.d] as const;
    const b = backend;
    const adopt = (buffer: GPUBuffer) => Effect.runPromise(b.adopt(buffer, { dtype: "f16", shape }));
    const [q, k, v, out] = await Promise.all([x.buffers.q, x.buffers.k, x.buffers.v, x.buffers.out].map(adopt));
    const p = Effect.runSync(resolveProblem(q, k, v, { out }));
    const clear = device.createCommandEncoder();
    clear.clearBuffer(x.buffers.out);
    device.queue.submit([clear.finish()]);
    const timing = await timePerCall(
      () => Effect.runPromise(b.attention(p, q, k, v)),
      () => device.queue.onSubmittedWorkDone(),
      timingOptions,
    );
    return { n, config, stage, timing, check: await check(device, b, x, n, o.h, o.d) };
  } catch (e) {
    return { n, config, stage, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  } finally {
    if (backend) await Effect.runPromise(backend.dispose);
  }
}

/** Runs the sweep (see the header) and prints one table; false if a configuration failed its check or errored. */
export async function sweep(o: SweepOptions): Promise<boolean> {
  const t0 = performance.now();
  const root = await Effect.runPromise(makeWith({ subgroups: true }));
  const device = root.gpuDevice();
  const dp = paddedHeadDim(o.d);
  const limit = device.limits.maxComputeWorkgroupStorageSize;
  const tiles = int8Tiles(dp, limit).map(int8TileName);
  const preferred = int8TileName({ bq: 64, bk: 64, rq: INT8_ROWS_PER_INVOCATION, pv: INT8_PV_KEYS });
  const withSubgroups = root.details.subgroups?.startsWith("on") ?? false;
  let configs: Config[] = [
    ...tiles.map((tile) => ({ tile, subgroups: false })),
    ...(withSubgroups
      ? tiles.filter((t) => new RegExp(`x64r\\dp${INT8_PV_KEYS}$`).test(t)).map((tile) => ({ tile, subgroups: true }))
      : []),
  ];
  if (o.only) {
    configs = o.only.map((s) => ({ tile: s.replace(/\+sg$/, ""), subgroups: s.endsWith("+sg") }));
    const unknown = configs.filter((c) => !tiles.includes(c.tile));
    // chooseTile would quietly fall back to another tile for these.
    if (unknown.length) throw new Error(`not a tile that fits here: ${unknown.map(nameOf)} (these fit: ${tiles})`);
  }
  // The default first: chooseTile's pick for this device (the preferred tile where it fits).
  const first = configs.find((c) => c.tile === preferred && !c.subgroups) ?? configs[0];
  configs = [first, ...configs.filter((c) => c !== first)];
  // The default's subgroup twin: always timed in the fine stage, so the log compares the two whatever the ranking.
  const firstSg = configs.find((c) => c.tile === first.tile && c.subgroups);
  const sgCount = configs.filter((c) => c.subgroups).length;
  const sgLine = withSubgroups
    ? `subgroup row maxima RAN: ${sgCount} "+sg" configurations (details.subgroups: ${root.details.subgroups})`
    : `subgroup row maxima DID NOT RUN: ${root.details.subgroups?.replace(/^off: /, "")}`;
  console.log(
    `sweep: ${configs.length} configurations on ${root.device} (workgroup memory ${limit} B); ` +
      `B=1 H=${o.h} D=${o.d} f16, non-causal; backend.attention() directly\n${sgLine}`,
  );
  const results: Result[] = [];
  let warm = false;
  const fastest = (n: number, stage: Stage) =>
    results.filter((r) => r.n === n && r.stage === stage && r.timing && r.check?.ok && !r.again)
      .sort((a, b) => a.timing!.perCall - b.timing!.perCall);
  const pick = (from: Result[]) => {
    const names = from.slice(0, o.top).map((r) => r.config);
    return [first, ...configs.filter((c) => c !== first && (c === firstSg || names.includes(nameOf(c))))];
  };
  const runAll = async (n: number, x: SizeInputs, list: Config[], stage: Stage, t: typeof TIMINGS.fine) => {
    for (const c of list) {
      const r = await runConfig(device, c, x, n, o, { ...t, warmupMs: warm ? 300 : 2000 }, stage);
      warm = true;
      const again = c === first && results.some((p) => p.n === n && p.stage === stage && p.config === nameOf(c));
      results.push(again ? { ...r, config: `${r.config} (again)`, again } : r);
      // Each result as it comes (stderr), so a run cut short still says what it measured.
      console.error(
        JSON.stringify({ n, stage, config: nameOf(c), again, ms: r.timing?.perCall, check: r.check, error: r.error }),
      );
    }
  };
  for (const [i, n] of o.sizes.entries()) {
    const x = inputsOf(device, n, o.h, o.d);
    if (i === 0) {
      await runAll(n, x, configs, "coarse", TIMINGS.coarse);
      await runAll(n, x, [...pick(fastest(n, "coarse")), first], "fine", TIMINGS.fine);
    } else {
      await runAll(n, x, [...pick(fastest(o.sizes[0], "fine")), first], "fine", TIMINGS.later);
    }
    for (const b of Object.values(x.buffers)) b.destroy();
  }
  await Effect.runPromise(root.dispose);

  const tops = (n: number, ms: number) => (4 * o.h * n * n * o.d) / (ms / 1e3) / 1e12;
  console.log(
    "\n| N | configuration | per call | TOPS | vs default | K | coarse (2 × ≈ 100 ms batches) | check (core checkOutput, BOUNDS) |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const n of o.sizes) {
    const fine = results.filter((r) => r.n === n && r.stage === "fine");
    const coarse = results.filter((r) => r.n === n && r.stage === "coarse");
    const base = fine.find((r) => r.config === nameOf(first))?.timing?.perCall;
    const order = (a: Result, b: Result) => (a.timing?.perCall ?? Infinity) - (b.timing?.perCall ?? Infinity);
    const shown = [...fine.sort(order), ...coarse.filter((c) => !fine.some((f) => f.config === c.config)).sort(order)];
    for (const r of shown) {
      const t = r.stage === "fine" ? r.timing : undefined;
      const c = coarse.find((x) => x.config === r.config)?.timing;
      console.log(
        `| ${n} | ${r.config} | ${t ? `${t.perCall.toFixed(3)} ms` : "—"} | ${
          t ? tops(n, t.perCall).toFixed(1) : "—"
        } | ${t && base ? `${(base / t.perCall).toFixed(3)}×` : "—"} | ${t?.k ?? "—"} | ${
          c ? `${c.perCall.toFixed(3)} ms` : "—"
        } | ${r.error ? `error: ${r.error}` : r.check?.detail} |`,
      );
    }
  }
  for (const n of o.sizes) {
    const best = fastest(n, "fine")[0];
    if (!best) continue;
    const [tile, sg] = best.config.split("+");
    console.log(
      `best at N=${n}: ${best.config}, ${best.timing!.perCall.toFixed(3)} ms; the table with it: ` +
        `SAGEATTN_WEBGPU_TILE=${tile}${sg ? " SAGEATTN_WEBGPU_SUBGROUPS=1" : ""} deno run -A table.js`,
    );
  }
  console.log(`\n${sgLine}`);
  if (firstSg) {
    for (const n of o.sizes) {
      const ms = (c: Config) =>
        results.find((r) => r.n === n && r.stage === "fine" && r.config === nameOf(c) && !r.again);
      const [a, b] = [ms(first), ms(firstSg)];
      console.log(
        `N=${n}: ${nameOf(firstSg)} ${
          b?.timing ? `${b.timing.perCall.toFixed(3)} ms (check ${b.check?.ok ? "ok" : "FAILED"})` : b?.error ?? "—"
        } vs ${nameOf(first)} ${a?.timing ? `${a.timing.perCall.toFixed(3)} ms` : a?.error ?? "—"}${
          a?.timing && b?.timing ? `: ${(a.timing.perCall / b.timing.perCall).toFixed(3)}× the default's speed` : ""
        }`,
      );
    }
  }
  console.log(
    `\nsweep took ${
      ((performance.now() - t0) / 1e3).toFixed(0)
    } s; rel-L1 bound vs the sage oracle ${BOUNDS.sageRelL1} ` +
      `+ f16 output rounding ${BOUNDS.outputRounding.f16}; a failed check's time is not a candidate. The winner ` +
      `goes into tiles.ts (preferred tile, INT8_ROWS_PER_INVOCATION, INT8_PV_KEYS).`,
  );
  return results.every((r) => r.check?.ok || r.error?.startsWith("subgroups"));
}
