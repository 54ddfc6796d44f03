#!/usr/bin/env bash
# Builds the panel (wasm + JS glue + CSS + assets) and the server binary from
# the same profile, which hydration requires.
#
#   scripts/build-site.sh release   → target/site      + target/release/p2pnet-server
#   scripts/build-site.sh dev       → target/site-dev  + target/debug/p2pnet-server
#
# This is the pipeline cargo-leptos runs, without its tool downloads (which
# fail offline). `cargo leptos build` works too when cargo-leptos is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
export PATH="$PWD/node_modules/.bin:$PATH"
# Leptos reads LEPTOS_OUTPUT_NAME at compile time; set, it would change the wasm file name.
unset LEPTOS_OUTPUT_NAME

case "$profile" in
  release) site=target/site; wasm_profile=wasm-release; wasm_dir=wasm-release; server_flags=(--release) ;;
  dev)     site=target/site-dev; wasm_profile=dev; wasm_dir=debug; server_flags=() ;;
  *) echo "usage: $0 [release|dev]" >&2; exit 2 ;;
esac

cargo build -p frontend --lib --target wasm32-unknown-unknown --profile "$wasm_profile"
rm -rf "$site"; mkdir -p "$site/pkg"
# Cargo writes where CARGO_TARGET_DIR says, if set; the site stays in ./target.
wasm-bindgen --target web --no-typescript --out-name p2pnet --out-dir "$site/pkg" \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/$wasm_dir/frontend.wasm"
if [ "$profile" = release ]; then
  # npm's binaryen (node_modules/.bin); Debian's wasm-opt 108 breaks hydration.
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    "$site/pkg/p2pnet_bg.wasm" -o "$site/pkg/p2pnet_bg.wasm"
fi
cp style/main.css "$site/pkg/p2pnet.css"
cp -r public/. "$site/"
cargo build -p server "${server_flags[@]}"
