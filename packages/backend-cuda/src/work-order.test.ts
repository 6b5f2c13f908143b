// csrc/work_order.h, compiled with the host C++ compiler: the Hopper kernel's causal item order against its
// definition here (every item once, groups of consecutive (sequence, head) pairs, heaviest Q block first within a
// group, the pairs in turn), and the group size the launch picks from the L2 budget.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { CXX, hasCxx } from "./test-support.js";

const csrc = fileURLToPath(new URL("../csrc", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "sageattn-order-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// "order H Q G U": the (pair, Q block, index across all heads) of items 0 … H·Q − 1, U pairs to a kv head; "group B K H R": causal_group_pairs(B, K, H, R).
const driver = `#include "work_order.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
int main(int argc, char** argv) {
  if (argc == 6 && std::strcmp(argv[1], "order") == 0) {
    const int heads = std::atoi(argv[2]), qBlocks = std::atoi(argv[3]), group = std::atoi(argv[4]), unit = std::atoi(argv[5]);
    for (int i = 0; i < heads * qBlocks; i++) {
      const sa::CausalItem c = sa::causal_item(i, heads, qBlocks, group, unit);
      std::printf("%d %d %d\\n", c.bh, c.qb, sa::causal_item_index(i, heads, qBlocks, group, unit));
    }
    return 0;
  }
  if (argc == 6 && std::strcmp(argv[1], "group") == 0) {
    std::printf("%d\\n", sa::causal_group_pairs(std::atoll(argv[2]), std::atoll(argv[3]), std::atoi(argv[4]), std::atoi(argv[5])));
    return 0;
  }
  return 2;
}
`;

let binary: string | undefined;
function run(args: (string | number)[]): string {
  if (!binary) {
    const src = join(work, "driver.cpp");
    writeFileSync(src, driver);
    binary = join(work, "driver");
    execFileSync(CXX, ["-std=c++17", "-O1", "-Wall", "-Werror", "-I", csrc, src, "-o", binary], { stdio: "pipe" });
  }
  return execFileSync(binary, args.map(String), { encoding: "utf8" });
}

/**
 * The groups' sizes by their definition: ⌈heads / group⌉ groups of consecutive pairs, in whole kv heads of `unit`
 * pairs, as equal as those allow, the larger ones first.
 */
function groupSizes(heads: number, group: number, unit = 1): number[] {
  const units = heads / unit, count = Math.ceil(units / (Math.min(group, heads) / unit));
  return Array.from({ length: count }, (_, i) => (Math.floor(units / count) + (i < units % count ? 1 : 0)) * unit);
}

/** The order by its definition: every (pair, Q block), sorted by group, then Q block from the last, then pair. */
function definedOrder(heads: number, qBlocks: number, group: number, unit = 1): [number, number][] {
  const groupOfPair: number[] = [];
  groupSizes(heads, group, unit).forEach((size, i) => groupOfPair.push(...Array<number>(size).fill(i)));
  const items: [number, number][] = [];
  for (let bh = 0; bh < heads; bh++) for (let qb = 0; qb < qBlocks; qb++) items.push([bh, qb]);
  return items.sort((a, b) => groupOfPair[a[0]]! - groupOfPair[b[0]]! || b[1] - a[1] || a[0] - b[0]);
}

/** Pairs per group as the kernel's order forms them: runs of items whose pairs stay within one group. */
function observedGroupSizes(order: [number, number][]): number[] {
  const sizes: number[] = [];
  let seen = new Set<number>(), lastQb = Infinity;
  for (const [bh, qb] of order) {
    if (qb > lastQb) { // the Q block went back up: a new group started
      sizes.push(seen.size);
      seen = new Set();
    }
    seen.add(bh);
    lastQb = qb;
  }
  sizes.push(seen.size);
  return sizes;
}

/** The kernel's order of `heads` × `qBlocks` items as the host-compiled header gives it. */
const order = (heads: number, qBlocks: number, group: number, unit = 1): string =>
  run(["order", heads, qBlocks, group, unit]);
const rows = (out: string): number[][] => out.trim().split("\n").map((line) => line.split(" ").map(Number));
const parse = (out: string): [number, number][] => rows(out).map(([bh, qb]) => [bh, qb] as [number, number]);

describe.skipIf(!hasCxx)(`causal work order (csrc/work_order.h, ${CXX})`, () => {
  it.each([
    [128, 128, 8],
    [128, 128, 128],
    [7, 5, 3],
    [12, 1, 4],
    [5, 4, 5],
    [5, 4, 100],
    [1, 9, 1],
    [96, 33, 20],
    [128, 22, 42],
    [128, 128, 5],
  ])("%i pairs × %i Q blocks in groups of %i: each item once, in the defined order", (heads, qBlocks, group) => {
    expect(parse(order(heads, qBlocks, group))).toEqual(definedOrder(heads, qBlocks, group));
  });

  it.each([
    [128, 4, 20, 4],
    [12, 3, 8, 4],
    [64, 7, 16, 8],
  ])(
    "%i pairs × %i Q blocks in groups of %i, %i pairs to a kv head: each item once, in the defined order",
    (heads, qBlocks, group, unit) => {
      expect(parse(order(heads, qBlocks, group, unit))).toEqual(definedOrder(heads, qBlocks, group, unit));
    },
  );

  it.each([
    [128, 128, 8],
    [7, 5, 3],
    [96, 33, 20],
  ])(
    "%i × %i in groups of %i: each place's index across heads decodes to its item, as the kernel reads it",
    (heads, qBlocks, group) => {
      for (const [bh, qb, index] of rows(order(heads, qBlocks, group))) {
        expect([index % heads, qBlocks - 1 - Math.floor(index / heads)]).toEqual([bh, qb]);
      }
    },
  );

  it.each([
    [128, 22, 42, [32, 32, 32, 32]], // N4K D64: 42 kv heads fit 32 MiB; four groups of 32, not 42 + 42 + 42 + 2
    [128, 128, 5, [...Array<number>(24).fill(5), 4, 4]],
    [10, 3, 5, [5, 5]],
    [7, 4, 3, [3, 2, 2]],
  ])("%i pairs × %i in groups of at most %i: groups as equal as they can be", (heads, qBlocks, group, sizes) => {
    expect(observedGroupSizes(parse(order(heads, qBlocks, group)))).toEqual(sizes);
    expect(groupSizes(heads, group)).toEqual(sizes);
  });

  it.each([
    [128, 4, 20, 4, [20, 20, 20, 20, 16, 16, 16]], // GQA 4: 5 kv heads fit; 32 kv heads in 7 groups, not 19 + 19 + 18 …
    [12, 3, 8, 4, [8, 4]],
  ])(
    "%i pairs × %i in groups of at most %i, %i to a kv head: groups of whole kv heads, as equal as those allow",
    (heads, qBlocks, group, unit, sizes) => {
      expect(observedGroupSizes(parse(order(heads, qBlocks, group, unit)))).toEqual(sizes);
      expect(groupSizes(heads, group, unit)).toEqual(sizes);
    },
  );

  it("one group of all heads is the order across heads (pair = index mod heads, the last Q block first)", () => {
    const heads = 11, qBlocks = 6;
    const got = parse(order(heads, qBlocks, heads));
    expect(got).toEqual(got.map((_, i) => [i % heads, qBlocks - 1 - Math.floor(i / heads)]));
  });

  it("sizes groups by kv heads that fit the budget, times the query heads sharing one", () => {
    const mib = 1 << 20;
    const kvHead = 16384 * 128 * 3; // N 16K, D 128: INT8 K and f16 V, 6 MiB
    expect(run(["group", 32 * mib, kvHead, 128, 1]).trim()).toBe("5");
    expect(run(["group", 32 * mib, kvHead, 128, 4]).trim()).toBe("20");
    expect(run(["group", 32 * mib, 64 * mib, 128, 4]).trim()).toBe("4"); // one kv head at least
    expect(run(["group", 32 * mib, 1024 * 128 * 3, 128, 1]).trim()).toBe("85");
    expect(run(["group", 32 * mib, 256 * 64 * 3, 96, 2]).trim()).toBe("96"); // all fit: one group
    expect(run(["group", 0, kvHead, 128, 4]).trim()).toBe("128"); // no budget: one group
  });
});
