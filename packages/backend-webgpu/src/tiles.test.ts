// Every INT8 tile shape the chooser can pick (or a caller can force) against the sage oracle, on both P·V paths:
// the kernel's register blocks (RQ rows per invocation, CK keys, QD quads) change with the tile, so each one is run
// here rather than only the one a CPU adapter's 32 KiB of workgroup memory picks by default.
import { accuracy, BOUNDS, hostTensor, makeQKV, resolveProblem, sageReference } from "@sageattn/core";
import type { CaseShape } from "@sageattn/core/conformance/check";
import { Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import { makeWith, type WebGPUBackend } from "./index.js";
import { chooseTile, INT8_TILES_FIRST_MIN_KEYS, int8TilesFirst, paddedHeadDim } from "./tiles.js";

// "p": keys per unrolled P·V step (PV_KEYS), INT8_PV_KEYS where not given; each of 4, 8 and 16 is run.
const TILES = [
  "64x64r8",
  "64x64r4",
  "32x64r8",
  "32x64r4",
  "16x64r8",
  "64x32r8",
  "32x32r4",
  "16x16r8",
  "16x16r4",
  "64x64r4p8",
  "64x16r4p4",
];
const CASES = [
  { D: 64, Nq: 150, Nk: 200, causal: true },
  { D: 128, Nq: 130, Nk: 130, causal: false },
  { D: 192, Nq: 70, Nk: 90, causal: false },
];

const loaded = await Effect.runPromiseExit(makeWith({}));
const base: WebGPUBackend | undefined = Exit.isSuccess(loaded) ? loaded.value : undefined;

type Case = CaseShape & { readonly causal: boolean };

// One call on a backend made with `opts` (on the shared device), its output and LSE held to the sage oracle; with
// `varlen`, B is 1 and c.Nq / c.Nk are the packed totals.
async function expectSage(
  opts: { tile?: string; f16: boolean; tilesFirstMinKeys?: number },
  c: Case,
  seed: number,
  varlen?: { q: number[]; k: number[] },
) {
  const b = await Effect.runPromise(makeWith({ device: (base as WebGPUBackend).gpuDevice(), ...opts }));
  const x = makeQKV(c, "k-bias", seed);
  const q = hostTensor(x.q, [c.B, c.Hq, c.Nq, c.D]);
  const k = hostTensor(x.k, [c.B, c.Hkv, c.Nk, c.D]);
  const v = hostTensor(x.v, [c.B, c.Hkv, c.Nk, c.D]);
  const packed = varlen && { cuSeqlensQ: Int32Array.from(varlen.q), cuSeqlensK: Int32Array.from(varlen.k) };
  const p = Effect.runSync(resolveProblem(q, k, v, { causal: c.causal, returnLse: true, varlen: packed }));
  const out = await Effect.runPromise(b.attention(p, q, k, v));
  const sage = sageReference(p, x.q, x.k, x.v);
  expect(accuracy((out.output as { data: Float32Array }).data, sage.output).relL1, "rel-L1 vs sage oracle")
    .toBeLessThanOrEqual(BOUNDS.sageRelL1);
  const lse = out.lse as Float32Array;
  for (let r = 0; r < lse.length; r++) {
    expect(Math.abs(lse[r] - sage.lse[r]), `lse row ${r}`).toBeLessThanOrEqual(
      BOUNDS.lseVsSage * Math.max(1, Math.abs(sage.lse[r])),
    );
  }
  await Effect.runPromise(b.dispose);
}

describe.skipIf(base === undefined)("INT8 kernel tiles", { timeout: 300_000 }, () => {
  const limit = base?.gpuDevice().limits.maxComputeWorkgroupStorageSize ?? 0;
  for (const f16 of [true, false]) {
    for (const c of CASES) {
      for (const tile of TILES) {
        const t = chooseTile("int8", paddedHeadDim(c.D), "f16", limit, tile);
        const name = `${tile} D${c.D} Nq${c.Nq} Nk${c.Nk} causal=${c.causal} ${f16 ? "f16" : "f32 forced"}`;
        // A forced tile that does not fit falls back to the default: that one is covered by another case.
        const fits = t !== undefined && `${t.bq}x${t.bk}r${t.rq}${t.pv ? `p${t.pv}` : ""}` === tile;
        it.skipIf(!fits)(name, () => expectSage({ tile, f16 }, { B: 1, Hq: 2, Hkv: 1, ...c }, 3));
      }
    }
  }
});

// Long non-causal calls run the INT8 kernel with its query tiles first (TILES_FIRST): every (batch, head, query
// tile) must still land on its own rows, through the fused store and the store pass (D 66), and per segment.
// Few queries against INT8_TILES_FIRST_MIN_KEYS keys keep it cheap; the last case lowers the threshold (the tuning
// option) to run a short call tiles first, with more query tiles than heads.
describe.skipIf(base === undefined)("INT8 kernel, query tiles first", { timeout: 300_000 }, () => {
  const N = INT8_TILES_FIRST_MIN_KEYS;
  const cases = [
    { name: `B2 Hq4 Hkv2 Nq150 Nk${N} D64`, c: { B: 2, Hq: 4, Hkv: 2, Nq: 150, Nk: N, D: 64, causal: false } },
    { name: `Hq2 Nq100 Nk${N} D66 (store pass)`, c: { B: 1, Hq: 2, Hkv: 1, Nq: 100, Nk: N, D: 66, causal: false } },
    {
      name: `varlen Hq4 Hkv2 D64: 150 × ${N} and 80 × 300`,
      c: { B: 1, Hq: 4, Hkv: 2, Nq: 230, Nk: N + 300, D: 64, causal: false },
      varlen: { q: [0, 150, 230], k: [0, N, N + 300] },
    },
    {
      name: "Hq3 Hkv3 Nq300 Nk200 D128, tilesFirstMinKeys 200",
      c: { B: 1, Hq: 3, Hkv: 3, Nq: 300, Nk: 200, D: 128, causal: false },
      minKeys: 200,
    },
  ];
  for (const f16 of [true, false]) {
    for (const t of cases) {
      it(`${t.name} ${f16 ? "f16" : "f32 forced"}`, () => {
        const maxNk = t.varlen ? N : t.c.Nk;
        expect(int8TilesFirst(false, maxNk, t.minKeys), "the longest segment's keys select tiles first").toBe(true);
        return expectSage({ f16, tilesFirstMinKeys: t.minKeys }, t.c, 11, t.varlen);
      });
    }
  }
});
