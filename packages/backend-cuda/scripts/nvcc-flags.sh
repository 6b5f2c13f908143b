# shellcheck shell=bash
# The nvcc flags of every object in the library, and the one target attention_sm90.cu is built for (wgmma exists only
# in sm_90a machine code). Sourced by build.sh and build-variant.sh, so a variant timed against the tree differs from
# it only in its sources.
NVCC_FLAGS=(-O3 -std=c++17 -Xcompiler -fPIC -Xcompiler -fvisibility=hidden -Xptxas -v --expt-relaxed-constexpr)
HOPPER=(-gencode=arch=compute_90a,code=sm_90a)
# Device code compressed for size: nvcc's default mode left the pre-pass's code uncompressed once it changed (10 MB
# of sm_90 code against 1 MB compressed), which took the npm install past its budget. The driver decompresses a
# module once, when the library first loads it. Older nvcc without the option builds uncompressed.
if "${NVCC:-nvcc}" --help 2>/dev/null | grep -q -- '--compress-mode'; then NVCC_FLAGS+=(--compress-mode=size); fi
