// The scale slots the pre-pass writes and the kernels read (csrc/geometry.cuh's q_scale_slot and k_scale_slot, with
// api.cu's shifts for each granularity), compiled with the host C++ compiler and held to core's oracle: Q row r and
// K key j of a sequence use the scale core numbers qRowsPerScale / kScaleIndex, and the pre-pass's store of a block's
// groups (first slot + group, tile_size.h's k_thread_group within the block) lands on the same slots.
import { kScaleIndex, type QkGranularity, qRowsPerScale } from "@sageattn/core";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { constantsHeader } from "../scripts/generate-headers.mjs";
import { CXX, hasCxx } from "./test-support.js";

const csrc = fileURLToPath(new URL("../csrc/", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "sageattn-slots-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const KEYS = 300, ROWS = 300;

// Per granularity: Q and K slots of rows/keys 0..299 of sequence 1 (so the sequence's own first slot is subtracted),
// and the slot the pre-pass's per-group store gives each key (the block's first slot + the key's group in it).
const program = `
#define __host__
#define __device__
#include <cstdio>
#include "geometry.cuh"
int main() {
  using namespace sa;
  const int shifts[4][3] = {{kQBlockShift, kKBlockShift, 0}, {kQWarpShift, kKBlockShift, 0}, {0, kKRowShift, 0},
                            {0, kKThreadShift, 1}};  // block, warp, row, thread, as api.cu sets them
  for (int gi = 0; gi < 4; gi++) {
    Geometry g{};
    g.qShift = shifts[gi][0];
    g.kShift = shifts[gi][1];
    g.kThread = shifts[gi][2] != 0;
    g.qSlots = g.kSlots = 100;
    Sequence sq{};
    sq.qSlot = 3;
    sq.kSlot = 5;
    const int64_t q0 = q_scale_slot(g, sq, 1, 0), k0 = k_scale_slot(g, sq, 1, 0);
    for (int r = 0; r < ${ROWS}; r++) std::printf("%lld ", (long long)(q_scale_slot(g, sq, 1, r) - q0));
    std::printf("\\n");
    for (int j = 0; j < ${KEYS}; j++) std::printf("%lld ", (long long)(k_scale_slot(g, sq, 1, j) - k0));
    std::printf("\\n");
    for (int j = 0; j < ${KEYS}; j++) {
      const int block = j / kKBlock * kKBlock, r = j - block;
      const int group = g.kThread ? k_thread_group(r) : r >> g.kShift;
      std::printf("%lld ", (long long)(k_scale_slot(g, sq, 1, block) + group - k0));
    }
    std::printf("%d\\n", 1 << (kKBlockShift - g.kShift));
  }
}
`;

const GRANULARITIES: readonly QkGranularity[] = ["block", "warp", "row", "thread"];

describe.skipIf(!hasCxx)(`scale slots of csrc/geometry.cuh, compiled with ${CXX}`, () => {
  const exe = join(work, "slots");
  const dir = join(work, "generated");
  execFileSync("mkdir", ["-p", dir]);
  writeFileSync(join(dir, "core_constants.h"), constantsHeader());
  writeFileSync(join(work, "slots.cpp"), program);
  execFileSync(CXX, ["-std=c++17", "-I", work, "-I", csrc, join(work, "slots.cpp"), "-o", exe], { stdio: "pipe" });
  const lines = execFileSync(exe, { encoding: "utf8" }).trim().split("\n").map((l) => l.trim().split(" ").map(Number));

  it.each(GRANULARITIES.map((g, i) => [g, i] as const))("%s: Q row r and K key j use core's scale", (g, i) => {
    const [q, k, stored] = lines.slice(3 * i, 3 * i + 3);
    const range = (n: number) => Array.from({ length: n }, (_, x) => x);
    expect(q).toEqual(range(ROWS).map((r) => Math.floor(r / qRowsPerScale(g))));
    expect(k).toEqual(range(KEYS).map((j) => kScaleIndex(g, j)));
    // What the pre-pass stores (one slot per group of a 64-key block, as many as the block has) is what is read.
    const perBlock = stored.pop()!;
    expect(stored).toEqual(k);
    expect(perBlock).toBe(Math.max(...range(64).map((j) => kScaleIndex(g, j))) + 1);
  });
});
