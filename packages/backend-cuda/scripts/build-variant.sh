#!/usr/bin/env bash
# Builds a variant of the library for A/B timing on a Hopper GPU: this package's csrc/, with a patch applied if one is
# given (a `git diff` taken at the repository root), for sm_90 only, into build/variants/NAME/libsageattn_cuda.so
# with its ptxas report beside it. Objects that the patch cannot change are compiled once and reused from
# build/variants/.obj (rebuilt when a source is newer). About 11 MB a variant: five fit in one device call.
#   scripts/build-variant.sh NAME [PATCH]
# Then, on the GPU machine, one call (carry packages/backend-cuda/build/variants):
#   for L in tree exp tree exp; do SAGEATTN_CUDA_LIB=build/variants/$L/libsageattn_cuda.so PEERS=0 \
#     python3 scripts/gpu_check.py time --shapes 4:32:16384:128:0; done
set -euo pipefail
name=${1:?usage: scripts/build-variant.sh NAME [PATCH]}
patch=${2:+$(realpath "$2")}
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -f csrc/generated/core_constants.h ] || node scripts/generate-headers.mjs
out=build/variants/$name
cache=build/variants/.obj
rm -rf "$out"
mkdir -p "$out/obj" "$cache"
cp -r csrc "$out/csrc"
if [ -n "$patch" ]; then
  # The patch names packages/backend-cuda/csrc/…: three components off leaves csrc/….
  (cd "$out" && patch -p3 --batch --quiet) <"$patch"
fi
# The sources whose objects the patch can change: those it changed, and those that include a changed header (directly
# or through other headers).
changed=()
for h in "$out"/csrc/*.h "$out"/csrc/*.cuh; do
  cmp -s "$h" "csrc/$(basename "$h")" || changed+=("$(basename "$h")")
done
grown=1
while [ $grown = 1 ]; do
  grown=0
  for h in "$out"/csrc/*.h "$out"/csrc/*.cuh; do
    b=$(basename "$h")
    case " ${changed[*]-} " in *" $b "*) continue ;; esac
    for c in "${changed[@]}"; do
      if grep -q "#include \"$c\"" "$h"; then changed+=("$b"); grown=1; break; fi
    done
  done
done
affected() {
  cmp -s "$1" "csrc/$(basename "$1")" || return 0
  for c in "${changed[@]}"; do grep -q "#include \"$c\"" "$1" && return 0; done
  return 1
}
source scripts/nvcc-flags.sh
pids=()
for src in "$out"/csrc/*.cu; do
  base=$(basename "$src" .cu)
  arch=(-gencode=arch=compute_90,code=sm_90)
  [ "$base" = attention_sm90 ] && arch=("${HOPPER[@]}")
  if ! affected "$src"; then
    obj=$cache/$base.o
    # Reused unless a tree source or header is newer than it.
    if [ -f "$obj" ] && [ -z "$(find csrc -newer "$obj" -type f -print -quit)" ]; then
      cp "$obj" "$out/obj/" && cp "$cache/$base.log" "$out/obj/"
      continue
    fi
    ("$NVCC" "${NVCC_FLAGS[@]}" "${arch[@]}" -c "csrc/$base.cu" -o "$obj" 2>"$cache/$base.log" &&
      cp "$obj" "$cache/$base.log" "$out/obj/") &
  else
    (cd "$out" && "$NVCC" "${NVCC_FLAGS[@]}" "${arch[@]}" -c "csrc/$base.cu" -o "obj/$base.o" 2>"obj/$base.log") &
  fi
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ $status = 0 ] || { cat "$out"/obj/*.log >&2; echo "build-variant: nvcc failed" >&2; exit 1; }
cat "$out"/obj/*.log >"$out/ptxas-report.txt"
"$NVCC" -shared -cudart static -gencode=arch=compute_90,code=sm_90 "$out"/obj/*.o -o "$out/libsageattn_cuda.so"
rm -rf "$out/obj" "$out/csrc"
echo "build-variant: $out/libsageattn_cuda.so ($(du -h "$out/libsageattn_cuda.so" | cut -f1))"
