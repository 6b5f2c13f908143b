#!/usr/bin/env bash
# Builds a variant of the library for A/B timing on a Hopper GPU: this package's csrc/, with a patch applied if one is
# given (a `git diff` taken at the repository root) and knobs set (KNOB=VALUE: the one `constexpr … KNOB = …;` line in
# csrc/ that defines it gets VALUE), for sm_90 only, into build/variants/NAME: libsageattn_cuda.so.xz (about 2.5 MB),
# its ptxas report, and variant.txt (the patch and knobs). Objects that the patch and knobs cannot change are compiled
# once and reused from build/variant-objects (rebuilt when a source is newer).
#   scripts/build-variant.sh NAME [PATCH] [KNOB=VALUE ...]
#   e.g. scripts/build-variant.sh tree
#        scripts/build-variant.sh stages4 kStages=4
#        scripts/build-variant.sh mine /tmp/mine.patch kLazyLog2=0.f
# Then scripts/ab-run.sh on the GPU machine (carry packages/backend-cuda/build/variants) times them side by side.
set -euo pipefail
name=${1:?usage: scripts/build-variant.sh NAME [PATCH] [KNOB=VALUE ...]}
shift
patch=
if [ $# -gt 0 ] && [[ $1 != *=* ]]; then
  patch=$(realpath "$1")
  shift
fi
knobs=("$@")
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -f csrc/generated/core_constants.h ] || node scripts/generate-headers.mjs
out=build/variants/$name
cache=build/variant-objects
rm -rf "$out"
mkdir -p "$out/obj" "$cache"
cp -r csrc "$out/csrc"
if [ -n "$patch" ]; then
  # The patch names packages/backend-cuda/csrc/…: three components off leaves csrc/….
  (cd "$out" && patch -p3 --batch --quiet) <"$patch"
fi
sources=("$out"/csrc/*.cu "$out"/csrc/*.cuh "$out"/csrc/*.h)
for kv in ${knobs[@]+"${knobs[@]}"}; do
  knob=${kv%%=*} value=${kv#*=}
  [[ $kv == *=* && $knob =~ ^[A-Za-z_][A-Za-z0-9_]*$ && $value =~ ^[A-Za-z0-9_.+-]+$ ]] || { echo "build-variant: $kv is not KNOB=VALUE" >&2; exit 1; }
  pattern="^(constexpr [A-Za-z0-9_:]+ $knob = )[^;]*;"
  hits=$(cat "${sources[@]}" | grep -cE "$pattern" || true)
  [ "$hits" = 1 ] || { echo "build-variant: $hits definitions of $knob in csrc/ (with the patch), want 1" >&2; exit 1; }
  sed -i -E "s/$pattern/\1$value;/" "${sources[@]}"
done
{
  echo "patch: ${patch:+${patch#"$(realpath ../..)"/}}"
  echo "knobs: ${knobs[*]-}"
} >"$out/variant.txt"
# The sources whose objects the patch and knobs can change: those they changed, and those that include a changed
# header (directly or through other headers).
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
# Compressed for the carry to the GPU machine (ab-run.sh unpacks it): a fifth of the size.
xz -T0 -6 "$out/libsageattn_cuda.so"
echo "build-variant: $out/libsageattn_cuda.so.xz ($(du -h "$out/libsageattn_cuda.so.xz" | cut -f1)), $(tr '\n' ' ' <"$out/variant.txt")"
