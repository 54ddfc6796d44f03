#!/usr/bin/env bash
# Crash durability: the release server under a steady stream of writes is
# killed with SIGKILL at random moments, KILLS times on SQLite and KILLS
# times on PostgreSQL (where every fifth kill also crashes PostgreSQL with
# an immediate shutdown). After each kill the database passes its
# integrity check and holds every acknowledged write; after each restart
# the node is back with its peers, decisions and grants.
#
#   bash scripts/crashtest.sh [KILLS]      (default 40; root: network namespace)
#
# Everything runs inside a network namespace this script creates and
# deletes: loopback, and a veth pair carrying the scan job's test
# prefix (probes to it go nowhere). The PostgreSQL instance is a throw-away
# one with its durable defaults (fsync on). Prints one table per backend.
set -euo pipefail
# One function, read whole before it runs: editing the file meanwhile
# cannot change what the running copy does.
main() {
cd "$(dirname "$0")/.."
kills=${1:-40}
[ "$(id -u)" = 0 ] || { echo "crashtest: run as root (it makes a network namespace)" >&2; exit 2; }
scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"

echo "== building the release server and the campaign driver"
cargo build --release --locked -p server --bin p2pnet-server --example crashtest

ns="p2pnet-crash-$$"
work=$(mktemp -d /tmp/p2pnet-crash.XXXXXX)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_port=5432
cleanup() {
  # Whatever still runs in the namespace (a server left by a failed run).
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns exec "$ns" runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true
  ip netns delete "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
# A veth pair with nothing behind it: probes to the prefix wait for a
# neighbour that never answers (the kernel may lack the dummy driver).
ip -n "$ns" link add scan0 type veth peer name scan1
ip -n "$ns" link set scan0 up
ip -n "$ns" link set scan1 up
ip -n "$ns" addr add fd00:5ca7:c7a::1/112 dev scan0 nodad
inns() { ip netns exec "$ns" "$@"; }

driver=target/release/examples/crashtest
common=(--server target/release/p2pnet-server --kills "$kills" --scan-prefix fd00:5ca7:c7a::/112)

echo "== SQLite: $kills kills"
inns "$driver" "${common[@]}" --database sqlite --work "$work/sqlite" | tee "$work/sqlite.out"

echo "== PostgreSQL: $kills kills"
chown postgres:postgres "$work"
runuser -u postgres -- "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 >/dev/null
pg() { inns runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w "$@" >/dev/null; }
pg -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work" start
inns runuser -u postgres -- "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE crashtest"
# The driver runs this after every fifth kill: PostgreSQL crashes too (an
# immediate shutdown skips the checkpoint; the start replays the WAL).
crash_db="runuser -u postgres -- $pg_bin/pg_ctl -D $work/pg -m immediate -w stop >/dev/null \
  && runuser -u postgres -- $pg_bin/pg_ctl -D $work/pg -l $work/pg.log -w \
     -o '-c listen_addresses=127.0.0.1 -p $pg_port -k $work' start >/dev/null"
inns "$driver" "${common[@]}" --database "postgres://postgres@127.0.0.1:$pg_port/crashtest" \
  --database-crash "$crash_db" --work "$work/postgres" | tee "$work/postgres.out"

echo
echo "== summary"
for backend in sqlite postgres; do
  sed -n '/^| figure/,$p' "$work/$backend.out"
  echo
done
}
main "$@"
