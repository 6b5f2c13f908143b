#!/usr/bin/env bash
# On the GPU machine, from the repository root, after device-prepare.sh (carry what it lists) and
# `cp -r .kit-$RT .device-kit`: device-check (conformance, host cost, 10k calls, decode with DECODE=1), then the cuda
# grid through the CLI with the python peers, one sequence length per invocation, each under its own time limit, so
# that a length cut off by the limit loses only itself. Output: $OUT/check-$RT.txt, $OUT/bench-$RT-N.txt.
# With DECODE=1 also torch SDPA's decode on an f16 cache (apps/cli/peers/torch_decode.py) in $OUT/torch-decode.txt.
#   RT=bun|deno  SIZES="1024 2048 4096"  HEAD_DIMS=64,128  CASE_S=150 (seconds per length, or CASE_S_<N> for one)
#   DECODE=0|1  DECODE_VALUES=f16,int8 (the KV cache value formats decode times and checks; default f16)
#   CHECK=1|0  SAGEATTN_TORCH_BACKENDS=sageattn-c,sageattn-kernel (peers to time; default all)
#   PEERS=1|0  BENCH_ARGS="--qk-granularity row --inputs massive" (more bench options)  TAG=row (in the file names)
#   SAGEATTN_CUDA_LIB=another build of the library (default: the package's dist/)
set -u
RT=${RT:-bun}
source .device-kit/env.sh >/dev/null 2>&1
export SAGEATTN_CUDA_LIB=${SAGEATTN_CUDA_LIB:-$PWD/packages/backend-cuda/dist/linux-x64/libsageattn_cuda.so}
export SAGEATTN_TORCH_SCRIPT=apps/cli/peers/torch_sdpa.py
if ls .peers/sageattention2-*.tar.xz >/dev/null 2>&1; then
  mkdir -p /tmp/peers && tar -C /tmp/peers -xJf .peers/sageattention2-*.tar.xz && export PYTHONPATH=/tmp/peers
fi
if [ "$RT" = bun ]; then run=(bun); else run=(deno run -A); fi
"${run[@]}" --version | head -1
if [ "${CHECK:-1}" = 1 ]; then
  DECODE_BENCH=${DECODE:-0} timeout "${CHECK_S:-150}" "${run[@]}" .device-bundle/check.js >"$OUT/check-$RT.txt" 2>&1
  echo "check rc $?"
  grep -E "SUMMARY|public-api-out\"|memory-flat|decode-bench|decode-accuracy|\"ok\":false" "$OUT/check-$RT.txt" | cut -c1-240
fi
if [ "${DECODE:-0}" = 1 ]; then
  timeout 90 python3 apps/cli/peers/torch_decode.py >"$OUT/torch-decode.txt" 2>&1
  echo "torch decode rc $?"
  grep -v skipped "$OUT/torch-decode.txt" | cut -c1-120
fi
for n in ${SIZES:-1024 2048 4096}; do
  limit=CASE_S_$n
  file="$OUT/bench-$RT${TAG:+-$TAG}-$n.txt"
  peers=()
  [ "${PEERS:-1}" = 1 ] && peers=(--peers)
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of options
  timeout "${!limit:-${CASE_S:-150}}" "${run[@]}" .device-bundle/cli.js bench --backend cuda "${peers[@]}" --head-dims "${HEAD_DIMS:-64,128}" \
    --sizes "$n" ${BENCH_ARGS:-} >"$file" 2>&1
  echo "bench${TAG:+ $TAG} N=$n rc $?"
  grep -E "^[0-9]+×|ours|C ABI|cudnn" "$file" | cut -c1-90
done
