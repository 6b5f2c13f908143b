import type { Subgroups } from "./shaders.js";
import { MAP_READ, Usage } from "./usage.js";

// What row_max_subgroup.wgsl relies on, run once at load: lanes numbered by the local invocation index (lane =
// index mod subgroup size), so aligned groups of 4 (of 16 where the subgroup has 16 lanes or more) invocations share
// a subgroup; and subgroupShuffleXor on vec4<f32> swapping with lane ^ mask, for masks 1 and 2, and 4 and 8 where
// the subgroup has 16 lanes or more (the branch on subgroup_size is uniform, as the kernel's on its own answer is).
// Every invocation writes its subgroup size if all of that holds for it, else 0. Any size the compiler picks from 4
// up is fine for the kernel, so the size is reported, not required.
const CHECK_BODY = `
@group(0) @binding(0) var<storage, read_write> ok: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32,
        @builtin(subgroup_size) size: u32) {
  let x = vec4<f32>(f32(lid), 1.0, f32(lid ^ 3u), 0.0);
  let a = subgroupShuffleXor(x, 1u);
  let b = subgroupShuffleXor(x, 2u);
  var swapped = u32(a.x) == (lid ^ 1u) && u32(b.x) == (lid ^ 2u) && u32(b.z) == (lid ^ 2u ^ 3u);
  if (size >= 16u) {
    let c = subgroupShuffleXor(x, 4u);
    let d = subgroupShuffleXor(x, 8u);
    swapped = swapped && u32(c.x) == (lid ^ 4u) && u32(d.x) == (lid ^ 8u) && u32(d.z) == (lid ^ 8u ^ 3u);
  }
  let laidOut = size >= 4u && lane == lid % size;
  ok[lid] = select(0u, size, laidOut && swapped);
}`;

// Tint (browsers) wants the directive; naga (Deno) may take subgroup operations without one, or reject it.
const DIRECTIVES = ["enable subgroups;", ""];

/**
 * Whether this device can run the subgroup variant of the reductions: the directive its compiler takes (see
 * Subgroups in shaders.ts) and the subgroup size the check kernel ran with, or why not. The device must have been
 * made with the "subgroups" feature. The kernel is correct for every subgroup size from 4 lanes up, so another size
 * in the attention pipeline (Intel picks 8, 16 or 32 per shader) changes its speed, not its result.
 */
export async function subgroupCheck(
  device: GPUDevice,
): Promise<{ directive: Subgroups; lanes?: number; why?: string }> {
  if (!device.features.has("subgroups")) return { directive: undefined, why: "the device has no subgroups" };
  let why = "";
  for (const directive of DIRECTIVES) {
    const out = device.createBuffer({ size: 1024, usage: Usage.STORAGE | Usage.COPY_SRC });
    const read = device.createBuffer({ size: 1024, usage: Usage.MAP_READ | Usage.COPY_DST });
    device.pushErrorScope("validation");
    let scoped = true;
    try {
      const module = device.createShaderModule({ code: `${directive}\n${CHECK_BODY}` });
      const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(
        0,
        device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [{ binding: 0, resource: { buffer: out } }],
        }),
      );
      pass.dispatchWorkgroups(1);
      pass.end();
      enc.copyBufferToBuffer(out, 0, read, 0, 1024);
      device.queue.submit([enc.finish()]);
      scoped = false;
      const error = await device.popErrorScope();
      if (error) {
        why = `${directive || "no directive"}: ${error.message.split("\n")[0]}`;
        continue;
      }
      await read.mapAsync(MAP_READ);
      const ok = new Uint32Array(read.getMappedRange().slice(0));
      read.unmap();
      const bad = ok.findIndex((x) => x === 0);
      if (bad < 0) return { directive, lanes: Math.min(...ok) };
      return {
        directive: undefined,
        why:
          `subgroup lanes not numbered by invocation index, or shuffles that do not swap lane ^ mask (invocation ${bad})`,
      };
    } catch (e) {
      if (scoped) await device.popErrorScope().catch(() => null);
      why = `${directive || "no directive"}: ${(e as Error).message}`;
    } finally {
      out.destroy();
      read.destroy();
    }
  }
  return { directive: undefined, why: `subgroup operations did not compile (${why})` };
}
