// Issue #12 case 6: with validate: false, a NaN or ±inf input must reach the output (the kernels' quantization
// would otherwise turn it into an ordinary number): the rows core's sage oracle makes undefined come out NaN.
import { type HostTensor, hostTensor, resolveProblem } from "@sageattn/core";
import { Effect } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { makeCpuSimd } from "./backend.js";

const backend = await Effect.runPromise(makeCpuSimd({ threads: 2 }));
afterAll(() => Effect.runPromise(backend.dispose));

const D = 16;
const wave = (n: number) => Float32Array.from({ length: n * D }, (_, i) => Math.sin(i * 0.7));
const rowBad = (out: Float32Array, r: number) => out.subarray(r * D, (r + 1) * D).some((x) => !Number.isFinite(x));

describe("validate: false keeps non-finite inputs visible", () => {
  for (const kernel of ["attention", "exactAttention"] as const) {
    for (const at of ["q", "k", "v"] as const) {
      for (const value of [NaN, Infinity, -Infinity]) {
        it(`${kernel}: ${value} in ${at} (row 3) makes the rows that read it non-finite, others stay finite`, async () => {
          const t = { q: wave(200), k: wave(70), v: wave(70) };
          t[at][3 * D + 2] = value;
          const [q, k, v] = [
            hostTensor(t.q, [1, 1, 200, D]),
            hostTensor(t.k, [1, 1, 70, D]),
            hostTensor(t.v, [1, 1, 70, D]),
          ] as HostTensor[];
          const p = Effect.runSync(resolveProblem(q, k, v, { validate: false, returnLse: true }));
          const r = await Effect.runPromise(backend[kernel]!(p, q, k, v));
          if (r.output.kind !== "host") throw new Error("cpu-simd returned a device tensor for host inputs");
          const out = r.output.data as Float32Array;
          expect(rowBad(out, 3), "row 3").toBe(true);
          expect(Number.isFinite(r.lse![3]), "lse of row 3").toBe(false);
          // A Q value only spoils its 128-row quantization block; K and V reach every row.
          expect(rowBad(out, 150), "row 150").toBe(at !== "q");
        });
      }
    }
  }
});
