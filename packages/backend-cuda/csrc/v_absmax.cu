// v_absmax.cu — the first of the two launches that quantize V for "int8" P·V (docs/DESIGN.md §2 step 5): one CTA per
// (sequence·kv head, chunk of kmean_chunk_tokens tokens) writes the largest |v| of each channel over its chunk to
// vpart; v_quantize.cu takes the max over a head's chunks. The max keeps a NaN (fmax_nan), so a NaN in a channel
// reaches its scale (and every output of that channel) as the oracle's does.
#include "dependent_launch.cuh"
#include "kernels.h"
#include "tensor_load.cuh"

namespace sa {
namespace {

__device__ __forceinline__ float abs_max(float a, float x) { return fmax_nan(a, fabsf(x)); }

__global__ void __launch_bounds__(kThreads) v_absmax_kernel(Geometry g, TensorRef v, float* vpart, int chunkTokens, int chunks) {
  __shared__ float4 partial[kThreads];
  __shared__ float maxima[256];
  // A programmatic dependent of the pre-pass: the stream's earlier kernels come first.
  dependent_wait();
  dependent_release();
  const int bx = int(blockIdx.x) / chunks, chunk = int(blockIdx.x) % chunks;
  const Sequence sq = sequence(g, bx / g.Hkv);
  const int h = bx % g.Hkv;
  const int t0 = chunk * chunkTokens, t1 = min(sq.nk, t0 + chunkTokens);
  const int64_t base = sq.b * v.sb + h * v.sh + int64_t(sq.k0) * v.sn;
  row_fold(g.D, g.DP, t0, t1, [&](int t, int c0) { return load4(v, base + t * v.sn + c0 * v.sd, c0, g.D); }, abs_max, partial, maxima);
  __syncthreads();
  for (int c = threadIdx.x; c < g.DP; c += kThreads) vpart[int64_t(blockIdx.x) * g.DP + c] = maxima[c];
}

}  // namespace

cudaError_t launch_v_absmax(const Geometry& g, const TensorRef& v, float* vpart, cudaStream_t stream) {
  const int chunks = kmean_chunks(g.maxK);
  const int64_t ctas = int64_t(g.S) * g.Hkv * chunks;
  if (ctas <= 0) return cudaSuccess;
  if (ctas >= (int64_t(1) << 31)) return cudaErrorInvalidConfiguration;
  return launch_dependent(v_absmax_kernel, dim3(unsigned(ctas)), dim3(kThreads), 0, stream, true, g, v, vpart,
                          kmean_chunk_tokens(g.maxK), chunks);
}

}  // namespace sa
