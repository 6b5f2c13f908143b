import { describe, expect, it } from "vitest";
import { measure, median } from "./timing.js";

describe("measure", () => {
  it("warms up, then reports the median of the timed runs", async () => {
    const times = [100, 90, 5, 7, 6, 50, 6];
    let i = 0;
    const r = await measure(async () => times[i++], {
      warmup: 2,
      minRuns: 5,
      maxRuns: 5,
      budgetMs: 0,
      longRunMs: 1000,
    });
    expect(r).toEqual({ ms: 6, runs: 5 }); // 100 and 90 were the warm-up
  });
  it("keeps adding runs until the budget is spent, up to maxRuns", async () => {
    let calls = 0;
    const r = await measure(async () => (calls++, 10), {
      warmup: 1,
      minRuns: 3,
      maxRuns: 8,
      budgetMs: 45,
      longRunMs: 1000,
    });
    expect(r.runs).toBe(5);
    expect(calls).toBe(6);
  });
  it("times a run of seconds once after a single warm-up", async () => {
    let calls = 0;
    const r = await measure(async () => (calls++, 3000), {
      warmup: 2,
      minRuns: 3,
      maxRuns: 10,
      budgetMs: 1,
      longRunMs: 2500,
    });
    expect(r).toEqual({ ms: 3000, runs: 1 });
    expect(calls).toBe(2);
  });
  it("median of even and odd counts", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
