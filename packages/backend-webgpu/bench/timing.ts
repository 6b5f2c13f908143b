// Per-call time of GPU work queued back to back, for this package's benches (table.ts, decode.ts, bench.ts).
// Deno's wait for the GPU (onSubmittedWorkDone, mapAsync; `synchronize` uses the first) returns about 11 ms after it
// is asked, even with nothing queued, on lavapipe and on the H200 alike: it resolves on a poll tick, not when the
// work ends. A batch of K calls closed by one wait therefore lasts K·t + w, and dividing by K alone leaves w / K in
// every number (a quarter of a millisecond at K = 42, three at K = 4). The slope between a batch of K calls and one
// of 2K, (T(2K) − T(K)) / K, cancels w: that is the per-call time reported; T(K) / K is kept beside it.

export interface PerCall {
  /** Milliseconds per call: the median over `batches` pairs of (T(2K) − T(K)) / K. */
  readonly perCall: number;
  /** The median of T(K) / K: one wait spread over K calls included (how the tables before 2026-12-04 were made). */
  readonly withWait: number;
  /** Calls in the shorter batch of a pair. */
  readonly k: number;
  /** Milliseconds of one wait with nothing queued (median of five): the w above. */
  readonly idleWait: number;
}

export interface TimingOptions {
  /** Pairs of batches timed. */
  readonly batches: number;
  /** Milliseconds the calls of the shorter batch should take. */
  readonly batchMs: number;
  /** Warm-up: batches of 4 calls for at least this long (and at least two). */
  readonly warmupMs: number;
  /** Calls per shorter batch at least (default 4) and at most (default 5000). */
  readonly minK?: number;
  readonly maxK?: number;
  /** Runs before each batch of `calls` calls, untimed: a bench whose calls use up room (a KV cache) makes it here. */
  readonly before?: (calls: number) => Promise<void>;
}

export const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Times `call` queued back to back, each batch closed by `wait`; see the file's header for the method. */
export async function timePerCall(
  call: () => Promise<unknown>,
  wait: () => Promise<void>,
  o: TimingOptions,
): Promise<PerCall> {
  const batch = async (k: number) => {
    await o.before?.(k);
    const t0 = performance.now();
    for (let i = 0; i < k; i++) await call();
    await wait();
    return performance.now() - t0;
  };
  const w0 = performance.now();
  let calls = 0;
  let spent = 0;
  let batchesRun = 0;
  for (let i = 0; i < 2 || performance.now() - w0 < o.warmupMs; i++) {
    spent += await batch(4);
    calls += 4;
    batchesRun++;
  }
  const idle: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await wait();
    idle.push(performance.now() - t0);
  }
  const idleWait = median(idle);
  // The warm-up's time per call without its waits sizes K; a floor keeps a noisy guess from asking for millions.
  const guess = Math.max((spent - batchesRun * idleWait) / calls, 1e-3);
  const k = Math.max(o.minK ?? 4, Math.min(o.maxK ?? 5000, Math.ceil(o.batchMs / guess)));
  const slopes: number[] = [];
  const single: number[] = [];
  for (let i = 0; i < o.batches; i++) {
    const t1 = await batch(k);
    const t2 = await batch(2 * k);
    slopes.push((t2 - t1) / k);
    single.push(t1 / k);
  }
  return { perCall: median(slopes), withWait: median(single), k, idleWait };
}
