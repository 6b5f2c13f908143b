// dependent_launch.cuh — programmatic dependent launch (compute capability 9.0+): a kernel launched this way may have
// its CTAs scheduled while the previous kernel in the stream finishes its last ones, so launch latency and start-up
// overlap that tail. Such a kernel must call dependent_wait() before it reads or writes memory the previous kernel
// touches; dependent_release() then lets the next kernel be scheduled early in turn.
#pragma once
#include <cuda_runtime.h>
#include <utility>

namespace sa {

__device__ __forceinline__ void dependent_wait() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void dependent_release() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Launches `kernel`, as a programmatic dependent of the stream's previous kernel when `dependent` (only where the
// device supports it: compute capability 9.0+).
template <typename... Params, typename... Args>
cudaError_t launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool dependent,
                             Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute overlap{};
  overlap.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  overlap.val.programmaticStreamSerializationAllowed = 1;
  if (dependent) {
    cfg.attrs = &overlap;
    cfg.numAttrs = 1;
  }
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

}  // namespace sa
