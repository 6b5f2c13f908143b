import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { caseKey } from "../grid.js";
import type { BenchCase } from "../types.js";
import { TORCH_SCRIPT, torchSdpa } from "./torch-sdpa.js";

const cases: BenchCase[] = [
  { B: 4, H: 32, N: 1024, D: 128, causal: false, dtype: "f16" },
  { B: 4, H: 32, N: 1024, D: 128, causal: true, dtype: "f16" },
];
const plan = { warmup: 1, runs: 3 };

/** A stand-in for torch_sdpa.py, run by node instead of python3, speaking the same argv and line protocol. */
function fakeScript(body: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "sageattn-torch-")), "fake.mjs");
  writeFileSync(path, body);
  return path;
}

describe("torch SDPA peer", () => {
  it("passes each shape on argv and parses results and per-backend failures, ignoring chatter", async () => {
    const script = fakeScript(`
const arg = (f) => process.argv[process.argv.indexOf(f) + 1];
const causal = process.argv.includes("--causal");
const base = { B: +arg("--batch"), H: +arg("--heads"), Nq: +arg("--seqlen"), Nk: +arg("--seqlen"), D: +arg("--head-dim"), causal, dtype: arg("--dtype") };
if (arg("--iterations") !== "3" || arg("--warmup") !== "1") process.exit(3);
console.log("loading torch…");
console.log(JSON.stringify({ peer: "torch-flash", ...base, ms: causal ? 1 : 2 }));
console.log(JSON.stringify({ peer: "torch-cudnn", ...base, error: "cuDNN SDPA unsupported" }));`);
    const seen: number[] = [];
    const r = await torchSdpa(cases, plan, (c) => seen.push(c.N), process.execPath, script);
    expect(seen).toEqual([1024, 1024]);
    const plain = r.get(caseKey(cases[0]))!;
    expect(plain.map((p) => [p.peer, p.status])).toEqual([["torch SDPA flash", "ok"], ["torch SDPA cudnn", "failed"]]);
    const ok = plain[0];
    expect(ok.status === "ok" && ok.timing.tops).toBeCloseTo((4 * 4 * 32 * 1024 * 1024 * 128) / 2e-3 / 1e12, 6);
    const causal = r.get(caseKey(cases[1]))![0];
    expect(causal.status === "ok" && causal.timing.tops).toBeCloseTo((2 * 4 * 32 * 1024 * 1024 * 128) / 1e-3 / 1e12, 6); // halved ops
  });

  it("marks every case unavailable with the reason once torch is missing, and asks only once", async () => {
    let calls = 0;
    const says = await torchSdpa(
      cases,
      plan,
      () => calls++,
      process.execPath,
      fakeScript(`console.log(JSON.stringify({ error: "torch sees no CUDA device" })); process.exit(2)`),
    );
    expect(calls).toBe(1);
    for (const c of cases) {
      expect(says.get(caseKey(c))).toEqual([{
        peer: "torch SDPA",
        status: "unavailable",
        error: "torch sees no CUDA device",
      }]);
    }
    const dies = await torchSdpa(
      cases,
      plan,
      undefined,
      process.execPath,
      fakeScript(`console.error("Segmentation fault"); process.exit(139)`),
    );
    expect((dies.get(caseKey(cases[1]))![0] as { error: string }).error).toBe(
      "torch_sdpa.py exited with 139 and no results: Segmentation fault",
    );
    const missing = await torchSdpa(cases, plan, undefined, "python3", "/nonexistent/torch_sdpa.py");
    expect(missing.get(caseKey(cases[0]))![0].status).toBe("unavailable");
    const noPython = await torchSdpa(cases, plan, undefined, "/nonexistent/python3", fakeScript(""));
    expect((noPython.get(caseKey(cases[0]))![0] as { error: string }).error).toContain("could not start");
  });

  it("the real script, here (no GPU): unavailable with its reason, never a crash", async () => {
    const r = await torchSdpa([cases[0]], plan, undefined, "python3", TORCH_SCRIPT);
    const only = r.get(caseKey(cases[0]))!;
    expect(only).toHaveLength(only[0].status === "ok" ? 2 : 1); // on a GPU machine: flash and cudnn rows
    if (only[0].status !== "ok") expect(only[0].status).toBe("unavailable");
  }, 60_000);
});
