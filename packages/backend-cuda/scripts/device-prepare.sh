#!/usr/bin/env bash
# Prepares a GPU-machine run of the cuda backend from this (CPU) machine, at the repository root:
#   .device-bundle/check.js, cli.js   device-check.ts and the CLI, each bundled into one file (no node_modules travel)
#   packages/backend-cuda/dist/        the library, built for sm_90 only (the device machine's H200)
#   .peers/                            SageAttention2's prebuilt kernels (../shared/peers), for `bench --peers`
#   .kit-bun/, .kit-deno/              the runtimes (../shared/tools/device-kit.sh), made once and kept
# Then run there, e.g.  carry [".kit-bun", ".device-bundle", ".peers", "packages/backend-cuda/dist"] and
#   cp -r .kit-bun .device-kit && RT=bun bash packages/backend-cuda/scripts/device-measure.sh
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
(cd packages/core && npx tsc -b)
(cd packages/backend-cuda && SAGEATTN_CUDA_ARCHS=90 SAGEATTN_BUILD_CUDA=1 bash scripts/build.sh)
mkdir -p .device-bundle .peers
(cd packages/backend-cuda &&
  npx bun build --target=bun scripts/device-check.ts --outfile ../../.device-bundle/check.js &&
  npx bun build --target=bun scripts/device-cli.ts --outfile ../../.device-bundle/cli.js)
cp ../shared/peers/sageattention2-*.tar.xz .peers/ 2>/dev/null || echo "no ../shared/peers: bench --peers will skip SageAttention2"
for rt in bun deno; do
  [ -d ".kit-$rt" ] && continue
  [ ! -e .device-kit ] || { echo ".device-kit/ exists: move it away first" >&2; exit 1; }
  ../shared/tools/device-kit.sh "$rt" && mv .device-kit ".kit-$rt"
done
du -sh .device-bundle .peers .kit-bun .kit-deno packages/backend-cuda/dist | awk '{print $2 ": " $1}'
