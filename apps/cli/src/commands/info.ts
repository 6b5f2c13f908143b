import { parseArgs } from "node:util";
import { Effect } from "effect";
import { backendStatus, hostTensor, resolveProblem, selectBackend } from "@sageattn/core";
import { machineName } from "../cli-util.js";
import { describeError, EXIT_OK } from "../errors.js";

const HELP = `sageattn info [--json]

Shows the runtime, every backend sageattn knows (capabilities, device, details), why each unavailable one was
rejected, and which backend a default call (f32, non-causal) would run on.`;

export async function infoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return EXIT_OK;
  }
  const rows = await Effect.runPromise(backendStatus());
  const probe = hostTensor(new Float32Array(64 * 64), [1, 1, 64, 64]);
  // Which backend a default call would run on, or why none would (a forced backend that is missing, say).
  const { chosen, why } = await Effect.runPromise(
    Effect.flatMap(resolveProblem(probe, probe, probe), (p) => selectBackend(p, undefined, [])).pipe(
      Effect.map((s) => ({ chosen: s.backend.name, why: undefined as string | undefined })),
      Effect.catchAll((e) => Effect.succeed({ chosen: "none", why: describeError(e).message })),
    ),
  );
  const report = {
    machine: machineName(),
    chosen,
    why,
    backends: rows.map((r) => ({
      name: r.name,
      priority: r.priority,
      available: !!r.backend,
      device: r.backend?.device,
      capabilities: r.backend?.capabilities,
      details: r.backend?.details,
      rejected: r.rejection ? { reason: r.rejection.reason, message: r.rejection.message } : undefined,
    })),
  };
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
    return EXIT_OK;
  }
  console.log(`sageattn on ${report.machine}`);
  console.log(`default call runs on: ${chosen}${why ? ` (${why})` : ""}\n`);
  for (const b of report.backends) {
    if (!b.available) {
      console.log(`✗ ${b.name}: ${b.rejected?.reason} — ${b.rejected?.message}`);
      continue;
    }
    const c = b.capabilities!;
    const flags = [
      c.causal && "causal",
      c.lse && "lse",
      c.mask && "mask",
      c.varlen && "varlen",
      c.deviceTensors && "device tensors",
      c.exactKernel && "exact kernel",
      c.kvCache && "kv cache",
    ].filter(Boolean);
    const ranked = b.rejected ? `, ${b.rejected.reason}: ${b.rejected.message}` : "";
    console.log(`✓ ${b.name} (priority ${b.priority}${ranked}) on ${b.device}`);
    console.log(`    dtypes ${c.dtypes.join("/")}, head dim ≤ ${c.maxHeadDim}, ${flags.join(", ")}`);
    for (const [k, v] of Object.entries(b.details ?? {})) console.log(`    ${k}: ${v}`);
  }
  return EXIT_OK;
}
