/**
 * Warm-up, then timed runs until a small budget is spent; the median is reported. V8 compiles wasm in a baseline tier
 * first and tiers up between calls (docs/DESIGN.md §4), and GPUs build pipelines on first use: the warm-up absorbs
 * both.
 */
export interface TimingPlan {
  readonly warmup: number;
  readonly minRuns: number;
  readonly maxRuns: number;
  /** Stop adding runs beyond minRuns once this much time was spent. */
  readonly budgetMs: number;
  /** A single run longer than this is timed once (N = 32768 on a CPU takes seconds per run). */
  readonly longRunMs: number;
}

export const DEFAULT_PLAN: TimingPlan = { warmup: 2, minRuns: 3, maxRuns: 10, budgetMs: 1500, longRunMs: 2500 };

/**
 * Times `run`, which returns the milliseconds it measured itself (so a device backend can leave out a read-back),
 * and returns the median and the number of timed runs.
 */
export async function measure(
  run: () => Promise<number>,
  plan: TimingPlan = DEFAULT_PLAN,
  onRun?: (what: string) => void,
): Promise<{ ms: number; runs: number }> {
  let warm = 0;
  for (let i = 0; i < plan.warmup; i++) {
    onRun?.(`warm-up ${i + 1}`);
    warm = await run();
    if (warm > plan.longRunMs) break; // one warm-up is enough when a run takes seconds
  }
  if (warm > plan.longRunMs) {
    onRun?.("run 1 of 1");
    return { ms: await run(), runs: 1 };
  }
  const times: number[] = [];
  let spent = 0;
  while (times.length < plan.minRuns || (times.length < plan.maxRuns && spent < plan.budgetMs)) {
    onRun?.(`run ${times.length + 1}`);
    const t = await run();
    times.push(t);
    spent += t;
    if (t > plan.longRunMs) break;
  }
  return { ms: median(times), runs: times.length };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Milliseconds `f` took. */
export async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}
