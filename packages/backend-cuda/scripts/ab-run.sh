#!/usr/bin/env bash
# On the GPU machine: the variants scripts/build-variant.sh made, checked and then timed side by side through
# gpu_check.py (the C ABI: end to end and kernel only). Carry packages/backend-cuda/build/variants.
#   scripts/ab-run.sh [NAME ...]     default: every variant there, "tree" first
# Environment:
#   CHECKS       gpu_check.py checks run once per variant before any timing: modes, accuracy, accuracy:MODE
#                (ACCURACY_MODE=MODE); default "modes accuracy:pvf32"; empty for none
#   CHECK_MODES  MODES for `modes` (default f16block,pvf32,pvint8)
#   MODES        MODES for `time` (gpu_check.py's default: f16block,pvf32)
#   SHAPES       time --shapes (default 4:32:16384:128:0)
#   ROUNDS       rounds of timing, each over every variant in turn, so drift on the card lands on all alike (default 2)
#   LIMIT        seconds one run may take before it is killed as a hang (default 150); the others go on
# Every output line is prefixed with its variant's name.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(cd "$here/.." && pwd)/build/variants
checks=${CHECKS-modes accuracy:pvf32}
rounds=${ROUNDS:-2}
limit=${LIMIT:-150}
shapes=${SHAPES:-4:32:16384:128:0}

names=("$@")
if [ ${#names[@]} = 0 ]; then
  [ -d "$dir/tree" ] && names=(tree)
  for d in "$dir"/*/; do
    n=$(basename "$d")
    [ "$n" = tree ] || names+=("$n")
  done
fi
[ ${#names[@]} -gt 0 ] || { echo "ab-run: no variants in $dir" >&2; exit 1; }

for n in "${names[@]}"; do
  v=$dir/$n
  if [ ! -f "$v/libsageattn_cuda.so" ]; then
    [ -f "$v/libsageattn_cuda.so.xz" ] || { echo "ab-run: $v has no library" >&2; exit 1; }
    if command -v xz >/dev/null; then
      xz -dkc "$v/libsageattn_cuda.so.xz" >"$v/libsageattn_cuda.so"
    else
      python3 -c 'import lzma, sys; open(sys.argv[2], "wb").write(lzma.open(sys.argv[1]).read())' \
        "$v/libsageattn_cuda.so.xz" "$v/libsageattn_cuda.so"
    fi
  fi
  echo "$n: $(cat "$v/variant.txt" 2>/dev/null | tr '\n' ' ')"
done

# One gpu_check.py run against variant $1's library, its lines prefixed; a run past $limit seconds is reported.
run() {
  local n=$1
  shift
  SAGEATTN_CUDA_LIB=$dir/$n/libsageattn_cuda.so timeout "$limit" "$@" 2>&1 | sed -u "s/^/$n: /"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || echo "$n: exit $rc$([ "$rc" = 124 ] && echo " (killed after $limit s: a hang?)")"
}

for c in $checks; do
  for n in "${names[@]}"; do
    case $c in
      modes) MODES=${CHECK_MODES:-f16block,pvf32,pvint8} run "$n" python3 "$here/gpu_check.py" modes ;;
      accuracy) run "$n" python3 "$here/gpu_check.py" accuracy ;;
      accuracy:*) ACCURACY_MODE=${c#accuracy:} run "$n" python3 "$here/gpu_check.py" accuracy ;;
      *) echo "ab-run: unknown check $c" >&2; exit 1 ;;
    esac
  done
done
for ((r = 1; r <= rounds; r++)); do
  for n in "${names[@]}"; do
    PEERS=0 run "$n" python3 "$here/gpu_check.py" time --shapes "$shapes"
  done
done
