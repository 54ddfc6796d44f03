#!/usr/bin/env bash
# Load and soak, against the release server on SQLite.
#
#   bash scripts/load.sh [SOAK_MINUTES] [PEERS]     (defaults 10 and 200; root)
#
# 1. Load: wrk holds 1,000 concurrent connections for 20 s on each of the
#    bootstrap endpoints (snapshot, public IP, announces) and the panel's
#    terminal API (with a session). Passes when every answer is a success
#    or a 429 carrying Retry-After, no connection fails, p99 stays under
#    5 s, and the server's memory stays bounded.
# 2. Soak: PEERS p2pnet nodes connect to the server's node, send messages
#    and churn for SOAK_MINUTES; the server's resident memory, descriptors,
#    threads and live tasks are sampled from /metrics, and must fall back
#    to idle once every peer has gone (server/examples/soak.rs).
#
# Everything runs in a network namespace this script creates and deletes
# (loopback only). Prints a summary table of each part.
set -euo pipefail
# One function, read whole before it runs: editing the file meanwhile
# cannot change what the running copy does.
main() {
cd "$(dirname "$0")/.."
minutes=${1:-10}
peers=${2:-200}
[ "$(id -u)" = 0 ] || { echo "load: run as root (it makes a network namespace)" >&2; exit 2; }
scripts/setup.sh >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
export PATH="$HOME/.cargo/bin:$PATH"

echo "== building the release server and the campaign drivers"
cargo build --release --locked -p server --bin p2pnet-server --example soak --example announce_bodies

ns="p2pnet-load-$$"
work=$(mktemp -d /tmp/p2pnet-load.XXXXXX)
server_pid=""
cleanup() {
  # Every process in the namespace (the server runs under `ip netns exec`,
  # not as $!), each step on its own: under set -e a failed step would end
  # the trap before the namespace is deleted.
  ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  if [ -n "$server_pid" ]; then
    wait "$server_pid" 2>/dev/null || true
  fi
  ip netns delete "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
inns() { ip netns exec "$ns" "$@"; }
# wrk and the server each hold 1,000 sockets and more.
ulimit -n "$(ulimit -Hn)"

password=load-test-admin-password
# Every peer of the soak connects from 127.0.0.1: the per-source limit on
# handshakes in progress is raised to the number of peers.
P2PNET_SERVER__LISTEN='["127.0.0.1:3000"]' \
P2PNET_SERVER__DATA_DIR="$work/data" \
P2PNET_SERVER__SITE_ROOT=target/site \
P2PNET_AUTH__ADMIN_PASSWORD=$password \
P2PNET_NODE__LISTEN=127.0.0.1:4000 \
P2PNET_NODE__DISCOVERY__ENABLED=false \
P2PNET_NODE__TRUST__AUTO_ACCEPT=true \
P2PNET_NODE__LIMITS__MAX_PENDING_PER_SOURCE=$peers \
P2PNET_LOG__FILTER=error \
NODEVICE_SELECT=1 \
  inns target/release/p2pnet-server >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do inns curl -fs http://127.0.0.1:3000/healthz >/dev/null 2>&1 && break; sleep 0.2; done
pid=$(pgrep -f -n "^target/release/p2pnet-server") || pid=$server_pid
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$pid/status"; }
hwm_kb() { awk '/^VmHWM/{print $2}' "/proc/$pid/status"; }

# A session for the panel API.
cookie=$(inns curl -s -o /dev/null -D - --data-urlencode username=admin \
  --data-urlencode "password=$password" --data-urlencode next=/ http://127.0.0.1:3000/auth/login \
  | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)
[ -n "$cookie" ] || { echo "load: cannot log in" >&2; exit 1; }
target/release/examples/announce_bodies 5000 >"$work/bodies.jsonl"

rows=()
failed=0
run_wrk() { # NAME PATH [VAR=VALUE…]
  local name=$1 path=$2; shift 2
  local before out result
  before=$(rss_kb)
  out=$(inns env "$@" wrk -t2 -c1000 -d20s --timeout 10s -s scripts/load/report.lua \
    "http://127.0.0.1:3000$path" 2>&1) || true
  result=$(printf '%s\n' "$out" | sed -n 's/^RESULT //p')
  if [ -z "$result" ]; then
    printf '%s\n' "$out" >&2
    rows+=("| $name | wrk failed | | | | | |"); failed=$((failed + 1)); return
  fi
  local row verdict
  row=$(python3 - "$name" "$result" "$before" "$(rss_kb)" <<'PY'
import json, sys
name, r, before, after = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
statuses = {int(k): v for k, v in r["statuses"].items()}
bad = {s: n for s, n in statuses.items() if not (200 <= s < 400 or s == 429)}
errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
ok = not bad and errors == 0 and r["missing_retry_after"] == 0 and r["p99_us"] < 5_000_000
rps = r["requests"] / (r["duration_us"] / 1e6)
shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
print(f"{'OK' if ok else 'FAIL'}| {name} | {rps:,.0f}/s | {r['p50_us']/1000:.1f} ms | "
      f"{r['p99_us']/1000:.1f} ms | {shown} | {errors} | {before/1024:.1f} → {after/1024:.1f} MiB |")
PY
)
  verdict=${row%%|*}
  rows+=("|${row#*|}")
  [ "$verdict" = OK ] || failed=$((failed + 1))
  echo "${row#*|}"
}

echo "== load: 1,000 connections, 20 s per endpoint"
idle_rss=$(rss_kb)
run_wrk "GET /api/Bootstrap/peers (snapshot)" /api/Bootstrap/peers
run_wrk "GET /api/Bootstrap/publicip" /api/Bootstrap/publicip
run_wrk "PUT /api/Bootstrap/peers (announce)" /api/Bootstrap/peers WRK_METHOD=PUT WRK_BODIES="$work/bodies.jsonl"
run_wrk "GET /api/parser/output (panel, session)" "/api/parser/output?after=0" WRK_COOKIE="$cookie"
run_wrk "GET /healthz" /healthz
peak_rss=$(hwm_kb)

echo "== soak: $peers peers for $minutes min"
soak_status=0
inns target/release/examples/soak --node 127.0.0.1:4000 --metrics http://127.0.0.1:3000/metrics \
  --peers "$peers" --minutes "$minutes" | tee "$work/soak.out" || soak_status=$?

echo
echo "== summary: load (wrk -t2 -c1000 -d20s, this machine: $(nproc) cores)"
echo "| endpoint | requests | p50 | p99 | answers | socket errors | server RSS |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
printf '\nserver RSS: %.1f MiB idle, %.1f MiB peak (VmHWM) over the load part\n' \
  "$(awk "BEGIN{print $idle_rss/1024}")" "$(awk "BEGIN{print $peak_rss/1024}")"
echo
echo "== summary: soak"
sed -n '/^| figure/,$p' "$work/soak.out"
if [ "$failed" -gt 0 ] || [ "$soak_status" -ne 0 ]; then
  echo "load: $failed endpoint(s) failed, soak exit $soak_status" >&2
  exit 1
fi
echo
echo "every check passed"
}
main "$@"
