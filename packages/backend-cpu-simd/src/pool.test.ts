// A run chains batches behind a barrier: a task that traps, on whichever thread takes it, must fail the run rather
// than leave the other threads waiting for a batch that never finishes, and the pool must work again afterwards.
import { afterAll, describe, expect, it } from "vitest";
import { ARENA_BASE, COUNTER_AT, Engine } from "./engine.js";
import { type WorkerFault, WorkerPool } from "./pool.js";
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
  pool.run(
    [{ fn: "prepareKvInt8", table, count: TASKS }, { fn: "prepareKvInt8", table, count: TASKS }],
    engine.memory,
    COUNTER_AT,
    scratch,
    scratchBytes,
    local,
  );

describe("worker pool", () => {
  for (const bad of [0, 7, TASKS - 1]) {
    it(`a trap in task ${bad} of the first batch rejects the run, and the next run succeeds`, async () => {
      records(bad);
      await expect(run()).rejects.toThrow();
      records(-1);
      await expect(run()).resolves.toBeUndefined();
    });
  }
});

// Issue #12 case 3: a worker that ends without an error event (terminated, exited, killed for memory) or with an
// uncaught throw fails the run it was part of, is replaced, and never leaves a run, a later run or dispose hanging.
describe("worker pool faults", () => {
  const empty = () => records(-1);
  /** A run whose caller, in its first task of the second batch, ends worker 0 (it may be anywhere in its tasks). */
  const runKilling = (fault: WorkerFault) => {
    let fired = false;
    const killer = (b: number, t: number) => {
      if (b === 1 && !fired) {
        fired = true;
        faulty.injectFault(0, fault);
      }
      local(b, t);
    };
    return faulty.run(
      [{ fn: "prepareKvInt8", table, count: TASKS }, { fn: "prepareKvInt8", table, count: TASKS }],
      engine.memory,
      COUNTER_AT,
      scratch,
      scratchBytes,
      killer,
    );
  };
  const plainRun = () =>
    faulty.run(
      [{ fn: "prepareKvInt8", table, count: TASKS }, { fn: "prepareKvInt8", table, count: TASKS }],
      engine.memory,
      COUNTER_AT,
      scratch,
      scratchBytes,
      local,
    );
  let faulty: WorkerPool;

  for (const fault of ["exit", "throw", "terminate"] as const) {
    it(`a worker ended by "${fault}" before a run: at most that run fails; the next runs get a fresh worker`, async () => {
      faulty = await WorkerPool.start(2, engine.module, engine.bytes, engine.memory);
      try {
        empty();
        faulty.injectFault(0, fault);
        // The fault is queued before the run's message: worker 0 never takes part. The caller and worker 1 do every
        // task, so the run may stand; if the death is seen first, the run fails with the death's cause.
        const first = await plainRun().then(
          () => "resolved",
          (e: unknown) => String(e),
        );
        expect(first).toMatch(/^resolved$|exited|injected fault/);
        await expect(plainRun()).resolves.toBeUndefined();
        await expect(plainRun()).resolves.toBeUndefined();
        expect(faulty.size).toBe(2);
      } finally {
        faulty.dispose();
      }
    });
    it(`a worker ended by "${fault}" during a run: it and the next run settle (one may fail), later runs succeed`, async () => {
      faulty = await WorkerPool.start(2, engine.module, engine.bytes, engine.memory);
      try {
        empty();
        const settled = await Promise.allSettled([runKilling(fault)]);
        settled.push(...(await Promise.allSettled([plainRun()])));
        expect(settled.filter((r) => r.status === "rejected").length, "runs failed by one death").toBeLessThanOrEqual(
          1,
        );
        await expect(plainRun()).resolves.toBeUndefined();
        expect(faulty.size).toBe(2);
      } finally {
        faulty.dispose();
      }
    });
  }

  it("dispose during a run settles the run", async () => {
    const p = await WorkerPool.start(1, engine.module, engine.bytes, engine.memory);
    empty();
    // Disposed from the caller's own share of the run (its `inputs` step runs after the workers were sent the run):
    // deterministic, where disposing from a task of the second batch depended on the caller winning one.
    const run = p.run(
      [{ fn: "prepareKvInt8", table, count: TASKS }, { fn: "prepareKvInt8", table, count: TASKS }],
      engine.memory,
      COUNTER_AT,
      scratch,
      scratchBytes,
      local,
      {
        inputs: () => p.dispose(),
      },
    );
    expect((await Promise.allSettled([run]))[0].status).toMatch(/fulfilled|rejected/);
    await expect(p.run([], engine.memory, COUNTER_AT, scratch, scratchBytes, local)).rejects.toThrow(/disposed/);
  });
});
