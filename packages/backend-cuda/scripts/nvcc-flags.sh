# shellcheck shell=bash
# The nvcc flags of every object in the library, and the one target attention_sm90.cu is built for (wgmma exists only
# in sm_90a machine code). Sourced by build.sh and build-variant.sh, so a variant timed against the tree differs from
# it only in its sources.
NVCC_FLAGS=(-O3 -std=c++17 -Xcompiler -fPIC -Xcompiler -fvisibility=hidden -Xptxas -v --expt-relaxed-constexpr)
HOPPER=(-gencode=arch=compute_90a,code=sm_90a)
