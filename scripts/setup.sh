#!/usr/bin/env bash
# Installs what the project needs and is missing; quick and silent when all is there.
# Debian/Ubuntu, as root (or with sudo). Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Debian packages (only the missing ones; apt-get update only if needed).
# nettle-dev, libgmp-dev and libclang-dev build sequoia's crypto backend;
# gnupg is the independent OpenPGP implementation the interop tests run;
# iproute2 makes the tests' network namespaces, util-linux's setpriv runs
# the server without capabilities in one.
packages=(build-essential pkg-config libssl-dev libclang-dev nettle-dev libgmp-dev curl
          ca-certificates chromium gnupg iproute2 iputils-ping procps mesa-vulkan-drivers
          libvulkan1 util-linux)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node may come from elsewhere (e.g. NodeSource, whose nodejs conflicts with Debian's npm).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Rust (stable, 1.95 or newer) and the wasm target.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; else
    say "rustup: installing the stable toolchain"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "rustup: adding wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 3. wasm-bindgen CLI at exactly the version in Cargo.lock (it must match the library).
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  say "cargo: installing wasm-bindgen-cli $want (about 2 minutes)"
  # Without --locked: its lock pins a crate version the registry may not serve.
  cargo install wasm-bindgen-cli --version "$want" --quiet
fi

# 4. npm tools: wasm-opt (binaryen) and Playwright's runner; never a browser download.
stamp=node_modules/.setup-stamp
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  say "npm: installing build and test tools"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
