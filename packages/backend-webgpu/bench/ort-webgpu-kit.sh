#!/usr/bin/env bash
# Packs the onnxruntime-web WebGPU peer run for the GPU machine (no node, deno or network there) into .kit-ortweb/ at
# the repository root: deno and the Vulkan loader (../shared/tools/device-kit.sh), the peer bench bundled into one
# file, our own bench bundle (so both run in one call on the same GPU), and ort-web's dist files for both of its
# WebGPU builds, the two .wasm files xz-compressed (27 + 28 MB raw would not fit the 64 MiB a run may carry).
#   usage, from anywhere in the repository:  packages/backend-webgpu/bench/ort-webgpu-kit.sh
#   then carry [".kit-ortweb"] and on the GPU machine, from the repository root:
#     cp -r .kit-ortweb .device-kit && source .device-kit/env.sh && cd .kit-ortweb && xz -d ort-*.wasm.xz && \
#       deno run -A ort-webgpu-mha.js --build webgpu && deno run -A ort-webgpu-mha.js --build all && deno run -A bench.js
set -euo pipefail
root=$(git rev-parse --show-toplevel)
pkg="$root/packages/backend-webgpu"
dist="$root/node_modules/onnxruntime-web/dist"
kit="$root/.kit-ortweb"
deno="$root/node_modules/.bin/deno"
grep -qx '/.kit-ortweb/' "$root/.git/info/exclude" || echo '/.kit-ortweb/' >> "$root/.git/info/exclude"

# Bundles first (bench.ts needs the generated WGSL module), written straight into the kit so bench-out/ is left alone.
rm -rf "$kit" && mkdir -p "$kit"
(cd "$pkg" && node scripts/bundle-wgsl.mjs &&
  "$deno" bundle --quiet --sloppy-imports --platform=deno -o "$kit/ort-webgpu-mha.js" bench/ort-webgpu-mha.ts &&
  "$deno" bundle --quiet --sloppy-imports --platform=deno -o "$kit/bench.js" bench/bench.ts)

# ort.webgpu = the native (C++) WebGPU EP in the asyncify wasm; ort.all = the JS-side EP (JSEP) in the jsep wasm.
for build in webgpu:asyncify all:jsep; do
  cp "$dist/ort.${build%%:*}.min.mjs" "$dist/ort-wasm-simd-threaded.${build##*:}.mjs" "$kit/"
  xz -T0 -6 -c "$dist/ort-wasm-simd-threaded.${build##*:}.wasm" > "$kit/ort-wasm-simd-threaded.${build##*:}.wasm.xz"
done

# device-kit.sh always writes .device-kit/ at the root; it is moved into the kit at once, and not made at all where
# one already exists (someone else's kit, possibly for another run).
[ ! -e "$root/.device-kit" ] || { echo ".device-kit/ exists at the root: move it away first" >&2; exit 1; }
"$root/../shared/tools/device-kit.sh" deno
cp -r "$root/.device-kit/." "$kit/" && rm -rf "$root/.device-kit"
du -sh "$kit" | awk '{print ".kit-ortweb: " $1 " (limit 64 MiB with the rest of the tree)"}'
