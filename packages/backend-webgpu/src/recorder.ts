import { Usage } from "./usage.js";

/** Kernel name → GPU time in milliseconds of the last profiled call. */
export type KernelTimes = Record<string, number>;

const MAX_DISPATCHES = 16;

/**
 * Records a call's dispatches: all into one compute pass, or, when profiling (a timestamp query set is given), each
 * into its own pass with timestamps at its start and end, resolved into a staging buffer by the same submission.
 */
export class DispatchRecorder {
  private pass: GPUComputePassEncoder | undefined;
  private readonly names: string[] = [];

  constructor(
    private readonly device: GPUDevice,
    private readonly enc: GPUCommandEncoder,
    private readonly querySet?: GPUQuerySet,
  ) {}

  dispatch(
    name: string,
    pipeline: GPUComputePipeline,
    group: GPUBindGroup,
    grid: readonly [number, number, number],
  ): void {
    if (grid[0] * grid[1] * grid[2] === 0) return;
    if (this.querySet && this.names.length < MAX_DISPATCHES / 2) {
      this.end();
      const i = this.names.length * 2;
      this.names.push(name);
      this.pass = this.enc.beginComputePass({
        timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 },
      });
    }
    this.pass ??= this.enc.beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, group);
    this.pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
    if (this.querySet) this.end();
  }

  end(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  /**
   * Ends the last pass; when profiling, resolves the timestamps into a staging buffer to read after submit.
   * `resolved` must outlive the submission (the caller destroys it after submitting).
   */
  finish(): { staging: GPUBuffer; resolved: GPUBuffer; names: string[] } | undefined {
    this.end();
    if (!this.querySet || this.names.length === 0) return undefined;
    const count = this.names.length * 2;
    const resolved = this.device.createBuffer({ size: count * 8, usage: Usage.QUERY_RESOLVE | Usage.COPY_SRC });
    const staging = this.device.createBuffer({ size: count * 8, usage: Usage.MAP_READ | Usage.COPY_DST });
    this.enc.resolveQuerySet(this.querySet, 0, count, resolved, 0);
    this.enc.copyBufferToBuffer(resolved, 0, staging, 0, count * 8);
    return { staging, resolved, names: this.names };
  }
}

/** A query set for profiling, where the device has timestamp queries. */
export function profilingQuerySet(device: GPUDevice): GPUQuerySet | undefined {
  return device.features.has("timestamp-query")
    ? device.createQuerySet({ type: "timestamp", count: MAX_DISPATCHES })
    : undefined;
}

/** Per-kernel GPU milliseconds from resolved timestamps (kernels that ran twice are summed). */
export function kernelTimes(stamps: BigUint64Array, names: readonly string[]): KernelTimes {
  const out: KernelTimes = {};
  names.forEach((name, i) => {
    out[name] = (out[name] ?? 0) + Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6;
  });
  return out;
}
