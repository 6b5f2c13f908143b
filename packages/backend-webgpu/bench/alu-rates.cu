// Per-SM throughput of the instructions attention_int8.wgsl leans on, in CUDA on the same GPU (what NVIDIA's Vulkan
// compiler can reach at best): dp4a (dot4I8Packed), packed f16 FMA (the f16-block P·V), f32 FMA (the f32 P·V), and
// dp4a beside two HFMA2 (whether the two share a pipe). 8 independent chains per thread, 8 CTAs of 256 per SM.
//   nvcc -O3 -arch=sm_90 -o alu-rates bench/alu-rates.cu && ./alu-rates
// The results and what they say about the WGSL kernel: NOTES.md (2026-12-06).
#include <cstdio>
#include <cuda_fp16.h>
constexpr int kIters = 4096;
constexpr int kChains = 8;

__global__ void k_dp4a(int *out, int seed) {
  int acc[kChains];
  int a = seed ^ threadIdx.x, b = seed * 3 + threadIdx.x;
  for (int c = 0; c < kChains; c++) acc[c] = c;
  for (int i = 0; i < kIters; i++) {
#pragma unroll
    for (int c = 0; c < kChains; c++) acc[c] = __dp4a(a + c, b, acc[c]);
  }
  int s = 0;
  for (int c = 0; c < kChains; c++) s += acc[c];
  if (s == 12345) out[0] = s;
}
__global__ void k_hfma2(int *out, int seed) {
  __half2 acc[kChains];
  __half2 a = __float2half2_rn(0.999f + seed * 1e-7f), b = __float2half2_rn(1e-4f * threadIdx.x);
  for (int c = 0; c < kChains; c++) acc[c] = __float2half2_rn((float)c);
  for (int i = 0; i < kIters; i++) {
#pragma unroll
    for (int c = 0; c < kChains; c++) acc[c] = __hfma2(a, acc[c], b);
  }
  float s = 0;
  for (int c = 0; c < kChains; c++) s += __low2float(acc[c]) + __high2float(acc[c]);
  if (s == 12345.f) out[0] = 1;
}
__global__ void k_ffma(int *out, int seed) {
  float acc[kChains];
  float a = 0.999f + seed * 1e-7f, b = 1e-4f * threadIdx.x;
  for (int c = 0; c < kChains; c++) acc[c] = (float)c;
  for (int i = 0; i < kIters; i++) {
#pragma unroll
    for (int c = 0; c < kChains; c++) acc[c] = fmaf(a, acc[c], b);
  }
  float s = 0;
  for (int c = 0; c < kChains; c++) s += acc[c];
  if (s == 12345.f) out[0] = 1;
}
__global__ void k_mixed(int *out, int seed) {
  int ai[kChains];
  __half2 ah[kChains];
  int a = seed ^ threadIdx.x, b = seed * 3 + threadIdx.x;
  __half2 ha = __float2half2_rn(0.999f), hb = __float2half2_rn(1e-4f * threadIdx.x);
  for (int c = 0; c < kChains; c++) { ai[c] = c; ah[c] = __float2half2_rn((float)c); }
  for (int i = 0; i < kIters; i++) {
#pragma unroll
    for (int c = 0; c < kChains; c++) { ai[c] = __dp4a(a + c, b, ai[c]); ah[c] = __hfma2(ha, ah[c], hb); ah[c] = __hfma2(ha, ah[c], hb); }
  }
  float s = 0;
  for (int c = 0; c < kChains; c++) s += __low2float(ah[c]) + ai[c];
  if (s == 12345.f) out[0] = 1;
}

template <typename F>
void time_it(const char *name, F kernel, double opsPerInstr, double instrPerIter) {
  int *out; cudaMalloc(&out, 4);
  cudaDeviceProp p; cudaGetDeviceProperties(&p, 0);
  int blocks = p.multiProcessorCount * 8, threads = 256;
  kernel<<<blocks, threads>>>(out, 1);
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  float best = 1e9;
  for (int r = 0; r < 5; r++) {
    cudaEventRecord(e0);
    kernel<<<blocks, threads>>>(out, r + 2);
    cudaEventRecord(e1); cudaEventSynchronize(e1);
    float ms; cudaEventElapsedTime(&ms, e0, e1); if (ms < best) best = ms;
  }
  double lanes = (double)blocks * threads * kIters * kChains * instrPerIter;
  int clockKhz = 0; cudaDeviceGetAttribute(&clockKhz, cudaDevAttrClockRate, 0);
  double perClkPerSm = lanes / (best * 1e-3) / (clockKhz * 1e3) / p.multiProcessorCount;
  printf("%-22s %8.3f ms  %7.1f T ops/s  %6.1f lane-instr/clk/SM at the %d MHz boost clock\n", name, best,
         lanes * opsPerInstr / (best * 1e-3) / 1e12, perClkPerSm, clockKhz / 1000);
  cudaFree(out);
}

int main() {
  cudaDeviceProp p; cudaGetDeviceProperties(&p, 0);
  printf("%s, %d SMs\n", p.name, p.multiProcessorCount);
  time_it("dp4a (8 ops)", k_dp4a, 8, 1);
  time_it("hfma2 (4 flops)", k_hfma2, 4, 1);
  time_it("ffma (2 flops)", k_ffma, 2, 1);
  time_it("dp4a+2 hfma2 (per 3)", k_mixed, 16.0 / 3, 3);
  return 0;
}
