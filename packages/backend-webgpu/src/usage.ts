/**
 * WebGPU's buffer usage and map mode flags as numbers: the GPUBufferUsage/GPUMapMode globals are missing where
 * WebGPU comes from a package (Node's `webgpu`, Bun's `bun-webgpu`) rather than the runtime. Values per the spec.
 */
export const Usage = {
  MAP_READ: 0x1,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
  QUERY_RESOLVE: 0x200,
} as const;
export const MAP_READ = 0x1;
