#!/usr/bin/env bash
# One command: set up, build (release), and run the server with the control panel
# on http://127.0.0.1:3000 using the embedded SQLite database in ./data.
# Extra arguments go to the server (see `--help`), e.g. `scripts/run.sh --listen 0.0.0.0:3000`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
scripts/build-site.sh release
config=()
[ -f p2pnet.toml ] && config=(--config p2pnet.toml)
exec target/release/p2pnet-server "${config[@]}" --site-root target/site "$@"
