#!/usr/bin/env bash
# Builds dist/linux-x64/libsageattn_cuda.so from csrc/ with nvcc (static CUDA runtime: users need only the driver),
# after generating csrc/generated/ from @sageattn/core (scripts/generate-headers.mjs; needs core built and node).
# Keeps the ptxas resource report (registers, shared memory, spills per kernel) beside it as ptxas-report.txt.
# Builds only where the library can be used (an NVIDIA driver is present) or when SAGEATTN_BUILD_CUDA=1 (CI, to
# keep checking that it builds and loads); SAGEATTN_BUILD_CUDA=0 never builds. Otherwise, and without nvcc, it says
# so and exits 0: the backend then reports LibraryNotFound.
# SAGEATTN_CUDA_ARCHS overrides the target list (e.g. "90" for a quick single-arch build).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${SAGEATTN_BUILD_CUDA:-auto}" in
  1) ;;
  0) echo "backend-cuda: SAGEATTN_BUILD_CUDA=0; skipping the native build" >&2; exit 0 ;;
  *)
    if [ ! -e /proc/driver/nvidia/version ] && [ ! -e /dev/nvidiactl ]; then
      echo "backend-cuda: no NVIDIA driver here; skipping the native build (SAGEATTN_BUILD_CUDA=1 builds it anyway)" >&2
      exit 0
    fi ;;
esac
NVCC="${NVCC:-}"
if [ -n "$NVCC" ] && [ ! -x "$NVCC" ]; then
  echo "backend-cuda: NVCC=$NVCC is not an executable" >&2
  NVCC=none
fi
if [ "$NVCC" = none ]; then NVCC=""
elif [ -z "$NVCC" ]; then
  if command -v nvcc >/dev/null 2>&1; then NVCC=$(command -v nvcc)
  elif [ -x /usr/local/cuda/bin/nvcc ]; then NVCC=/usr/local/cuda/bin/nvcc
  fi
fi
if [ -z "$NVCC" ]; then
  echo "backend-cuda: nvcc not found (PATH, /usr/local/cuda/bin); skipping the native build" >&2
  exit 0
fi
# csrc/generated/ from @sageattn/core: its constants, and static_asserts that pin sageattn.h to core's schemas. Those
# checks compile alone first (host compiler, a second), so a schema mismatch fails here, naming the field.
node scripts/generate-headers.mjs || {
  echo "backend-cuda: cannot generate csrc/generated/ from @sageattn/core (build it first: npm run build -w @sageattn/core)" >&2
  exit 1
}
"$NVCC" -std=c++17 -x c++ -c csrc/generated/abi_checks.h -o /dev/null || {
  echo "backend-cuda: csrc/sageattn.h disagrees with core's schemas (packages/core/src/schema.ts), as named above" >&2
  exit 1
}
OUT=dist/linux-x64
OBJ=build/obj
mkdir -p "$OUT" "$OBJ"
# Machine code for A100 (80), RTX 30 (86), RTX 40/L4 (89), H100 (90), and compute_90 PTX that newer GPUs JIT.
# With --threads 0 the four archs compile in parallel: about 7 minutes on the 2-core CI machine since the finer
# granularities doubled the attention kernels and the pre-pass (SAGEATTN_CUDA_ARCHS=90 alone: about 2.5).
ARCHS="${SAGEATTN_CUDA_ARCHS:-80 86 89 90}"
GENCODE=()
for a in $ARCHS; do GENCODE+=("-gencode=arch=compute_$a,code=sm_$a"); done
LAST=${ARCHS##* }
GENCODE+=("-gencode=arch=compute_$LAST,code=compute_$LAST")
source scripts/nvcc-flags.sh
# --threads 0: one nvcc thread per target architecture (the attention kernels dominate the build).
FLAGS=("${NVCC_FLAGS[@]}" --threads 0 "${GENCODE[@]}")
REPORT="$OUT/ptxas-report.txt"
: >"$REPORT.tmp"
pids=()
# attention_sm90.cu is built for HOPPER alone (nvcc-flags.sh; the library picks it at run time on compute capability
# 9.0 only).
for src in csrc/*.cu; do
  name=$(basename "$src" .cu)
  flags=("${FLAGS[@]}")
  if [ "$name" = attention_sm90 ]; then
    flags=()
    for f in "${FLAGS[@]}"; do case "$f" in -gencode=*) ;; *) flags+=("$f") ;; esac; done
    flags+=("${HOPPER[@]}")
  fi
  ("$NVCC" "${flags[@]}" -c "$src" -o "$OBJ/$name.o" 2>"$OBJ/$name.log" || { cat "$OBJ/$name.log" >&2; exit 1; }) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ $status -eq 0 ] || { echo "backend-cuda: nvcc failed" >&2; exit 1; }
for src in csrc/*.cu; do cat "$OBJ/$(basename "$src" .cu).log" >>"$REPORT.tmp"; done
mv "$REPORT.tmp" "$REPORT"
"$NVCC" -shared -cudart static "${GENCODE[@]}" "$OBJ"/*.o -o "$OUT/libsageattn_cuda.so"
echo "backend-cuda: built $OUT/libsageattn_cuda.so (archs: $ARCHS)"
