// A run chains batches behind a barrier: a task that traps, on whichever thread takes it, must fail the run rather
// than leave the other threads waiting for a batch that never finishes, and the pool must work again afterwards.
import { afterAll, describe, expect, it } from "vitest";
import { ARENA_BASE, COUNTER_AT, Engine } from "./engine.js";
import { WorkerPool } from "./pool.js";
import { KV_RECORD_BYTES, P } from "./records.js";

const engine = await Engine.create("simd128", true);
engine.ensure(ARENA_BASE + (1 << 20));
const pool = await WorkerPool.start(1, engine.module, engine.bytes, engine.memory);
afterAll(() => pool.dispose());

const TASKS = 16;
const table = ARENA_BASE, scratch = ARENA_BASE + 65536, scratchBytes = engine.kernels.scratchBytes(8);
const local = (_: number, t: number) => engine.kernels.prepareKvInt8(table, t, scratch);

/** K/V records with no keys (they do nothing), except `bad`, whose K rows lie far past the end of memory. */
function records(bad: number): void {
  const i32 = engine.i32;
  for (let t = 0; t < TASKS; t++) {
    const r = (table + t * KV_RECORD_BYTES) >> 2;
    const data = ARENA_BASE + 4096;
    for (const field of [P.k, P.v, P.kmean, P.kOut, P.sK, P.vOut, P.sV]) i32[r + field / 4] = data;
    i32[r + P.nk / 4] = t === bad ? 64 : 0;
    i32[r + P.Dp / 4] = 8;
    i32[r + P.smooth / 4] = 1;
    if (t === bad) i32[r + P.k / 4] = 0x7ff00000;
  }
}

const run = () =>
  pool.run([{ fn: "prepareKvInt8", table, count: TASKS }, { fn: "prepareKvInt8", table, count: TASKS }], engine.memory, COUNTER_AT, scratch, scratchBytes, local);

describe("worker pool", () => {
  for (const bad of [0, 7, TASKS - 1])
    it(`a trap in task ${bad} of the first batch rejects the run, and the next run succeeds`, async () => {
      records(bad);
      await expect(run()).rejects.toThrow();
      records(-1);
      await expect(run()).resolves.toBeUndefined();
    });
});
