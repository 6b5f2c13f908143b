#!/usr/bin/env bash
# The system packages the tests need beyond npm's: Mesa's Vulkan drivers (lavapipe: WebGPU for Deno on the CPU) and
# Chromium (the browser tests). Run before `npm test` (its pretest) and by CI. Installs what is missing where it can
# (root with apt-get: CI, a fresh container); elsewhere it names the packages and fails before any test runs, instead
# of a browser test failing at the end of a long run. SAGEATTN_CHROMIUM names another Chromium.
set -euo pipefail
[ "$(uname -s)" = Linux ] || exit 0
missing=()
[ -x "${SAGEATTN_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
compgen -G "/usr/share/vulkan/icd.d/lvp_icd*.json" >/dev/null || missing+=(mesa-vulkan-drivers)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "tests: installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "tests: missing system packages: ${missing[*]} (sudo apt-get install ${missing[*]} on Debian or Ubuntu)" >&2
exit 1
