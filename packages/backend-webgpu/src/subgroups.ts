import type { Subgroups } from "./shaders.js";
import { MAP_READ, Usage } from "./usage.js";

// What row_max_subgroup.wgsl relies on, run once at load: subgroups of at least 16 lanes, lanes numbered by the
// local invocation index (lane = index mod subgroup size), so the 16 invocations of a row group are 16 lanes of one
// subgroup; and subgroupShuffleXor on vec4<f32> swapping with lane ^ mask. Every invocation writes 1 if all of that
// holds for it. The shuffles run in uniform control flow, as the kernel's do.
const CHECK_BODY = `
@group(0) @binding(0) var<storage, read_write> ok: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32,
        @builtin(subgroup_size) size: u32) {
  let x = vec4<f32>(f32(lid), 1.0, f32(lid ^ 3u), 0.0);
  let a = subgroupShuffleXor(x, 1u);
  let b = subgroupShuffleXor(x, 8u);
  let laidOut = size >= 16u && lane == lid % size;
  let swapped = u32(a.x) == (lid ^ 1u) && u32(b.x) == (lid ^ 8u) && u32(b.z) == (lid ^ 8u ^ 3u);
  ok[lid] = select(0u, 1u, laidOut && swapped);
}`;

// Tint (browsers) wants the directive; naga (Deno) may take subgroup operations without one, or reject it.
const DIRECTIVES = ["enable subgroups;", ""];

/**
 * Whether this device can run the subgroup variant of the reductions: the directive its compiler takes (see
 * Subgroups in shaders.ts), or why not. The device must have been made with the "subgroups" feature. `minSize` is
 * the adapter's subgroupMinSize where it reports one: a compiler may pick another subgroup size for another
 * pipeline (Intel's 8/16/32), so the check kernel's size alone does not bind the attention kernel's; every size the
 * adapter may pick must be at least 16.
 */
export async function subgroupCheck(
  device: GPUDevice,
  minSize: number | undefined,
): Promise<{ directive: Subgroups; why?: string }> {
  if (!device.features.has("subgroups")) return { directive: undefined, why: "the device has no subgroups" };
  if (minSize !== undefined && minSize < 16) {
    return { directive: undefined, why: `the adapter's subgroups may have ${minSize} lanes, fewer than 16` };
  }
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
      const bad = ok.findIndex((x) => x !== 1);
      if (bad < 0) return { directive };
      return {
        directive: undefined,
        why: `subgroups smaller than 16 lanes or not laid out by invocation index (invocation ${bad})`,
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
