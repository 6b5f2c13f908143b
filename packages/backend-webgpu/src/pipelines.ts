import { type KernelName, kernelSource, type Precision, type Subgroups, type UnrollCounts } from "./shaders.js";

/**
 * Compiled pipelines of one device, keyed by kernel, precision, override constants and whether subgroup variants are
 * used (`subgroups`: the device's directive, from acquire.ts; undefined where it has none or they are off).
 */
export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(private readonly device: GPUDevice, private readonly subgroups?: Subgroups) {}

  get(
    kernel: KernelName,
    precision: Precision,
    constants: Record<string, number>,
    counts: UnrollCounts = {},
  ): GPUComputePipeline {
    // Sorting the names alone: sorting [name, value] pairs compares them as strings, ten times slower per call.
    const list = (r: Readonly<Record<string, number>>) => {
      let key = "";
      for (const name of Object.keys(r).sort()) key += `${name}=${r[name]},`;
      return key;
    };
    const sg = kernel === "attention_int8" ? this.subgroups : undefined;
    const moduleKey = `${kernel}/${precision}/${sg === undefined ? "" : "sg/"}${list(counts)}`;
    const key = `${moduleKey}/${list(constants)}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      let module = this.modules.get(moduleKey);
      if (!module) {
        module = this.device.createShaderModule({
          label: moduleKey,
          code: kernelSource(kernel, precision, counts, sg),
        });
        this.modules.set(moduleKey, module);
      }
      pipeline = this.device.createComputePipeline({
        label: key,
        layout: "auto",
        compute: { module, entryPoint: "main", constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }
}

/** Workgroup counts for a 1-D job of `threads` threads in workgroups of 256, folded into 2-D past the x limit. */
export function grid1d(threads: number, maxPerDim: number): { x: number; y: number; rowPitch: number } {
  const groups = Math.max(1, Math.ceil(threads / 256));
  const x = Math.min(groups, maxPerDim);
  return { x, y: Math.ceil(groups / x), rowPitch: x * 256 };
}
