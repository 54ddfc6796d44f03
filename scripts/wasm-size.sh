#!/usr/bin/env bash
# Builds the release wasm the way scripts/build-site.sh does (wasm-bindgen,
# then npm's wasm-opt -Oz), prints its raw and gzip sizes, and fails when the
# gzip size is over the budget (ARCHITECTURE.md: at most 400 KiB).
#
#   scripts/wasm-size.sh            check against 400 KiB
#   WASM_BUDGET_BYTES=N scripts/wasm-size.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
unset LEPTOS_OUTPUT_NAME
budget=${WASM_BUDGET_BYTES:-409600}

cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release --locked
out=$(mktemp -d /tmp/p2pnet-wasm-size.XXXXXX)
trap 'rm -rf "$out"' EXIT
wasm-bindgen --target web --no-typescript --out-name p2pnet --out-dir "$out" \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/frontend.wasm"
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  "$out/p2pnet_bg.wasm" -o "$out/p2pnet_bg.wasm"
raw=$(wc -c <"$out/p2pnet_bg.wasm")
gz=$(gzip -9 -c "$out/p2pnet_bg.wasm" | wc -c)
printf 'release wasm: %d bytes raw, %d bytes gzip (budget %d, %d to spare)\n' \
  "$raw" "$gz" "$budget" $((budget - gz))
if [ "$gz" -gt "$budget" ]; then
  echo "the release wasm is over its gzip budget: see ARCHITECTURE.md for what costs wasm" >&2
  exit 1
fi
