// kernels.h — host-side entry points of the kernels, one per .cu file.
#pragma once
#include <cuda_runtime.h>
#include "geometry.cuh"

namespace sa {

// Token chunks the K mean is summed over in parallel (one CTA each), for a longest sequence of maxK tokens. 512
// tokens a chunk gives B·Hkv·N/512 CTAs: enough to fill the GPU from N = 4096 at B·Hkv = 32 (2048 left it half idle).
constexpr int kMeanChunk = 512;
inline int kmean_chunks(int maxK) { return maxK <= kMeanChunk ? 1 : (maxK + kMeanChunk - 1) / kMeanChunk; }

// prepass.cu: mean of K, INT8 Q and K−mean with per-block scales, V as f16, and (for the LSE) smScale·q·mean(K).
// `hopper` writes the layout of hopper_layout.h (for attention_sm90.cu) instead of plain rows.
cudaError_t launch_prepass(const Geometry& g, const TensorRef& q, const TensorRef& k, const TensorRef& v,
                           const Workspace& w, float smScale, bool smoothK, bool lse, bool hopper, cudaStream_t stream);

// Shared memory (bytes) the attention kernel needs at this padded head dim.
int attention_smem_bytes(int DP);

// attention_sm80.cu: INT8 Q·Kᵀ, online softmax in exp2, FP16 P·V, output in o's dtype and strides.
cudaError_t launch_attention(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal,
                             bool pvF32, cudaStream_t stream);

// attention_sm90.cu (sm_90a, padded head dims 64 and 128): the same on wgmma, reading the Hopper layout.
int attention_sm90_smem_bytes(int DP);
cudaError_t launch_attention_sm90(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal,
                                  bool pvF32, cudaStream_t stream);

}  // namespace sa
