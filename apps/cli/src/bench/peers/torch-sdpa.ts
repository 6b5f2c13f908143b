/**
 * torch's scaled_dot_product_attention (flash and cuDNN backends), SageAttention2's CUDA kernels and our own C ABI
 * (from python, the TypeScript path's ceiling) as the CUDA peers, through
 * `python3 apps/cli/peers/torch_sdpa.py` (its docstring is the protocol): one process per shape,
 *   argv:   --batch B --heads H --seqlen N --head-dim D [--causal] --dtype f16 --warmup W --iterations R
 *   stdout: one JSON line per torch backend, {"peer": "torch-flash", "B": …, "ms": 51.2, "tops": …}
 *           or {"peer": "torch-cudnn", …, "error": "…"} when that backend cannot run the shape;
 *           a single {"error": "…"} line (exit status 2) when torch or CUDA is missing.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { attentionOps } from "../format.js";
import { caseKey } from "../grid.js";
import type { BenchCase, PeerResult } from "../types.js";

/** apps/cli/peers/torch_sdpa.py, found from this file in src/ or dist/; SAGEATTN_TORCH_SCRIPT names it for a bundled CLI. */
export const TORCH_SCRIPT = process.env.SAGEATTN_TORCH_SCRIPT ??
  fileURLToPath(new URL("../../../peers/torch_sdpa.py", import.meta.url));

/** Display names of the script's non-torch rows. */
const PEER_NAMES: Record<string, string> = {
  "sageattn-c": "sageattn C ABI (python)",
  "sageattn-kernel": "sageattn kernel only (python)",
  "sa2-fp16": "SageAttention2 INT8+FP16",
  "sa2-fp8": "SageAttention2 INT8+FP8",
};

interface Line {
  peer?: string;
  ms?: number;
  error?: string;
}

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  spawnError?: Error;
}

function runScript(python: string, args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    let out = "", err = "";
    const child = spawn(python, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    child.on("error", (e) => resolve({ code: null, stdout: out, stderr: err, spawnError: e }));
    child.on("close", (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
}

const parseLines = (text: string): Line[] =>
  text.split("\n").flatMap((t) => {
    try {
      const x = JSON.parse(t) as unknown;
      return typeof x === "object" && x !== null && !Array.isArray(x) ? [x as Line] : [];
    } catch {
      return [];
    }
  });

/**
 * Times every case with torch, one process each; the results per case key. Once torch turns out to be missing
 * (no python3, no torch, no GPU, no script), every remaining case is marked unavailable with that reason.
 */
export async function torchSdpa(
  cases: readonly BenchCase[],
  plan: { warmup: number; runs: number },
  onCase: (c: BenchCase) => void = () => {},
  python = "python3",
  script = TORCH_SCRIPT,
  sageattnLib?: string,
): Promise<Map<string, PeerResult[]>> {
  const results = new Map<string, PeerResult[]>(cases.map((c) => [caseKey(c), []]));
  let unavailable = existsSync(script) ? undefined : `${script} is missing`;
  for (const c of cases) {
    const list = results.get(caseKey(c))!;
    if (unavailable) {
      list.push({ peer: "torch SDPA", status: "unavailable", error: unavailable });
      continue;
    }
    onCase(c);
    const args = [
      script,
      "--batch",
      String(c.B),
      "--heads",
      String(c.H),
      "--seqlen",
      String(c.N),
      "--head-dim",
      String(c.D),
      "--dtype",
      c.dtype === "f32" ? "f16" : c.dtype,
    ];
    if (c.causal) args.push("--causal");
    args.push("--warmup", String(plan.warmup), "--iterations", String(plan.runs));
    // Beside torch: our own library through its C ABI (the ceiling of the TypeScript path) and SageAttention2's
    // kernels; each is reported unavailable on its own line when it cannot run.
    // SAGEATTN_TORCH_BACKENDS narrows the list (a second runtime's run needs only the C ABI rows, for example).
    args.push(
      "--backends",
      process.env.SAGEATTN_TORCH_BACKENDS ??
        "flash,cudnn,sa2-fp16,sa2-fp8" + (sageattnLib ? ",sageattn-c,sageattn-kernel" : ""),
    );
    if (sageattnLib) args.push("--sageattn-lib", sageattnLib);
    const r = await runScript(python, args);
    const lines = parseLines(r.stdout);
    const fatal = lines.find((l) => l.peer === undefined && l.error);
    if (r.spawnError || fatal || !lines.some((l) => l.peer)) {
      const last = r.stderr.trim().split("\n").pop() ?? "";
      unavailable = r.spawnError
        ? `${python} could not start: ${r.spawnError.message}`
        : (fatal?.error ?? `torch_sdpa.py exited with ${r.code} and no results${last ? `: ${last}` : ""}`);
      list.push({ peer: "torch SDPA", status: "unavailable", error: unavailable });
      continue;
    }
    for (const l of lines) {
      if (!l.peer) continue;
      const peer = `${PEER_NAMES[l.peer] ?? `torch SDPA ${l.peer.replace(/^torch-/, "")}`}${
        c.dtype === "f32" ? " (f16)" : ""
      }`;
      if (typeof l.ms === "number" && l.ms > 0) {
        const tops = attentionOps({ B: c.B, H: c.H, Nq: c.N, Nk: c.N, D: c.D, causal: c.causal }) / (l.ms / 1e3) / 1e12;
        list.push({ peer, status: "ok", timing: { ms: l.ms, tops, runs: plan.runs }, accuracy: null });
      } else list.push({ peer, status: "failed", error: l.error ?? "no time reported" });
    }
  }
  return results;
}
