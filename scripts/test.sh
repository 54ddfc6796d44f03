#!/usr/bin/env bash
# One command: set up, then run every check: format, clippy (host and wasm),
# unit + integration tests (SQLite and a throw-away PostgreSQL), the release
# wasm's size budget, and the browser end-to-end suite in Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# CI builds once from a clean clone: incremental caches would only double the disk used.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# A clean run leaves about 13 GB in target/; say what there is, so a full disk reads as one.
df -h . | awk 'NR == 2 { print "disk: " $4 " free of " $2 }'

step "format"
cargo fmt --all --check

step "clippy (host, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "clippy (wasm frontend)"
cargo clippy -p frontend --target wasm32-unknown-unknown --locked -- -D warnings

step "throw-away PostgreSQL"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_dir=$(mktemp -d /tmp/p2pnet-pg.XXXXXX)
pg_port=$(( 40000 + RANDOM % 20000 ))
cleanup() {
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap cleanup EXIT
chown postgres:postgres "$pg_dir"
runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
export P2PNET_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
export P2PNET_REQUIRE_POSTGRES=1
echo "PostgreSQL on port $pg_port"

step "unit and integration tests"
# Examples are left out: clippy has checked them, and their debug builds
# (the server's link its whole stack) would only take minutes and disk.
cargo test --workspace --locked --no-fail-fast --lib --bins --tests
step "doc tests"
cargo test --workspace --locked --no-fail-fast --doc

step "fuzz smoke (5 s a target; scripts/fuzz.sh N for a campaign)"
scripts/fuzz.sh 5

step "release wasm size budget"
scripts/wasm-size.sh

step "end-to-end (Chromium)"
scripts/build-site.sh dev
# The second p2pnet node the panel tests spawn (target/debug/examples/dial_peer).
cargo build -p p2pnet --example dial_peer --locked
# The other instance of the widescan spec (target/debug/widescan).
cargo build -p widescan --bin widescan --locked
(cd end2end && playwright test)
