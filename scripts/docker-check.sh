#!/usr/bin/env bash
# Builds the Docker image for real and checks what a VPS deployment relies on.
#
#   bash scripts/docker-check.sh
#
# No registry is reachable here, so the base images are made locally and
# passed as the Dockerfile's build arguments: Debian from debootstrap, a
# stand-in for rust:1-bookworm with this machine's stable toolchain, and a
# stand-in for postgres:15 with Debian's PostgreSQL (scripts/docker/). The
# Docker engine is Debian's, started with no bridge and no iptables rules;
# every container runs with `--network none` (its own loopback only), or in
# the network namespace of another check container, so nothing is sent
# anywhere but to a container's own interfaces.
#
# Checks: the image runs as a non-root user; its HEALTHCHECK turns healthy;
# the panel answers for a configured host name and refuses others; keys and
# data persist in their volumes when the container is replaced; without
# NET_RAW the server starts and refuses scans with the reason, with NET_RAW a
# scan runs (on a veth pair inside the container); the same server on
# PostgreSQL in a second container, and the compose file validated. Prints a
# summary table and exits non-zero when a check failed.
#
# Root only. The first run installs docker.io and debootstrap, makes the base
# images and builds the image from scratch (about 30 minutes on 2 cores);
# later runs reuse the base images and Docker's layer cache.
set -euo pipefail
# The whole script is one function, read before it runs: editing the file
# during the half-hour build cannot change what the running copy does.
main() {
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "docker-check: run as root (it starts dockerd)" >&2; exit 2; }

WORK=${P2PNET_DOCKER_WORK:-/var/tmp/p2pnet-docker}
IMAGE=p2pnet:check
DEBIAN_BASE=p2pnet-local/debian:bookworm
RUST_BASE=p2pnet-local/rust:1-bookworm
PG_BASE=p2pnet-local/postgres:15
PASSWORD=docker-check-admin-password
HOSTNAME_OK=p2p.check.test
PREFIX=fd00:5ca7:d0c::/120
PREFIX_SELF=fd00:5ca7:d0c::1
# Every name the check creates, so a rerun (or an interrupted run) starts clean.
CONTAINERS=(p2pnet-check p2pnet-check-pg p2pnet-check-onpg)
VOLUMES=(p2pnet-check-data p2pnet-check-keys p2pnet-check-pgdata)
mkdir -p "$WORK"

log() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------- set up
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v nsenter >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian's client matches its engine; a newer client elsewhere on PATH wants
# buildx for builds.
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)
docker() { "$DOCKER" "$@"; }

started_dockerd=""
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (no bridge, no iptables)"
  dockerd --bridge=none --iptables=false --ip6tables=false >"$WORK/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see $WORK/dockerd.log" >&2; exit 1; }
fi

cleanup() {
  for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  for v in "${VOLUMES[@]}"; do docker volume rm "$v" >/dev/null 2>&1 || true; done
  if [ -n "$started_dockerd" ]; then
    kill "$started_dockerd" 2>/dev/null || true
    wait "$started_dockerd" 2>/dev/null || true
  fi
}
trap cleanup EXIT
for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
for v in "${VOLUMES[@]}"; do docker volume rm "$v" >/dev/null 2>&1 || true; done

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

if ! have_image "$DEBIAN_BASE"; then
  log "making $DEBIAN_BASE with debootstrap"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log"
  # This machine's own trust anchors that Debian does not ship (a TLS proxy's
  # CA, say): the builds inside reach the registries through the same path.
  # They take effect when an image installs ca-certificates.
  mkdir -p "$WORK/rootfs/usr/local/share/ca-certificates"
  python3 - "$WORK/rootfs/usr/local/share/ca-certificates" <<'PY'
import glob, re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
known = {c for f in glob.glob("/usr/share/ca-certificates/**/*.crt", recursive=True)
         for c in pem.findall(open(f).read())}
host = pem.findall(open("/etc/ssl/certs/ca-certificates.crt").read())
for i, cert in enumerate(c for c in host if c not in known):
    open(f"{sys.argv[1]}/host-anchor-{i}.crt", "w").write(cert + "\n")
PY
  tar -C "$WORK/rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$DEBIAN_BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi

if ! have_image "$RUST_BASE"; then
  log "making $RUST_BASE from this machine's stable toolchain"
  toolchain=$(rustc +stable --print sysroot)
  ctx="$WORK/rust-base"
  rm -rf "$ctx"; mkdir -p "$ctx/rustup/toolchains" "$ctx/cargo/bin"
  rustup target add --toolchain stable wasm32-unknown-unknown >/dev/null
  name=$(basename "$toolchain")
  # The documentation (800 MB) is left out; nothing builds with it.
  tar -C "$(dirname "$toolchain")" --exclude="$name/share/doc" -c "$name" | tar -C "$ctx/rustup/toolchains" -x
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
    "$name" > "$ctx/rustup/settings.toml"
  cp "$(command -v rustup)" "$ctx/cargo/bin/rustup"
  for proxy in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
    ln -s rustup "$ctx/cargo/bin/$proxy"
  done
  cp scripts/docker/rust-base.Dockerfile "$ctx/Dockerfile"
  docker build --network host --build-arg DEBIAN_IMAGE="$DEBIAN_BASE" -t "$RUST_BASE" "$ctx" >"$WORK/rust-base.log"
  rm -rf "$ctx"
fi

# Always built: small, and its layer cache makes an unchanged one instant.
log "making $PG_BASE"
docker build --network host --build-arg DEBIAN_IMAGE="$DEBIAN_BASE" -t "$PG_BASE" \
  -f scripts/docker/postgres.Dockerfile scripts/docker >"$WORK/postgres-base.log"

# ---------------------------------------------------------------- build
log "building $IMAGE (log: $WORK/build.log)"
build_start=$(date +%s)
if ! DOCKER_BUILDKIT=0 docker build --network host \
    --build-arg RUST_IMAGE="$RUST_BASE" --build-arg RUNTIME_IMAGE="$DEBIAN_BASE" \
    -t "$IMAGE" . >"$WORK/build.log" 2>&1; then
  tail -40 "$WORK/build.log" >&2
  echo "docker-check: the image did not build" >&2
  exit 1
fi
build_secs=$(( $(date +%s) - build_start ))
image_bytes=$(docker image inspect -f '{{.Size}}' "$IMAGE")

# ---------------------------------------------------------------- checks
results=()
failed=0
record() { # NAME OK|FAIL DETAIL
  results+=("$(printf '| %-34s | %-4s | %s |' "$1" "$2" "$3")")
  [ "$2" = OK ] || failed=$((failed + 1))
  printf '%-34s %s  %s\n' "$1" "$2" "$3"
}

pid_of() { docker inspect -f '{{.State.Pid}}' "$1"; }
# curl from this machine, inside the container's network namespace: the
# request reaches the server on the container's own loopback.
ncurl() { local c=$1; shift; nsenter -t "$(pid_of "$c")" -n curl -sS --max-time 20 "$@"; }

wait_healthy() { # CONTAINER SECONDS → prints the final status
  local status=""
  for _ in $(seq "$2"); do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null || echo gone)
    case $status in healthy|unhealthy|gone) break ;; esac
    sleep 1
  done
  echo "$status"
}

# Starts the server container NAME with extra docker-run arguments.
run_server() {
  local name=$1; shift
  docker run -d --name "$name" \
    -e P2PNET_AUTH__ADMIN_PASSWORD="$PASSWORD" \
    -e P2PNET_SERVER__ALLOWED_HOSTS="[\"$HOSTNAME_OK\"]" \
    -e P2PNET_WIDESCAN__TEST_MODE=true \
    "$@" "$IMAGE" >/dev/null
}

COOKIE=""; CSRF=""
login() { # CONTAINER
  local c=$1 headers
  headers=$(ncurl "$c" -o /dev/null -D - -H "Host: $HOSTNAME_OK" \
    --data-urlencode username=admin --data-urlencode "password=$PASSWORD" --data-urlencode next=/ \
    "http://127.0.0.1:3000/auth/login")
  COOKIE=$(printf '%s' "$headers" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)
  [ -n "$COOKIE" ] || return 1
  CSRF=$(ncurl "$c" -H "Host: $HOSTNAME_OK" -H "Cookie: $COOKIE" "http://127.0.0.1:3000/" \
    | sed -n 's/.*name="csrf-token" content="\([^"]*\)".*/\1/p' | head -1)
  [ -n "$CSRF" ]
}

# Runs one terminal line; prints the output lines (an error line as "error: …").
terminal() { # CONTAINER LINE
  local body
  body=$(python3 -c 'import json,sys; print(json.dumps({"line": sys.argv[1]}))' "$2")
  ncurl "$1" -H "Host: $HOSTNAME_OK" -H "Origin: http://$HOSTNAME_OK" -H "Cookie: $COOKIE" \
    -H "x-csrf-token: $CSRF" -H 'content-type: application/json' --data "$body" \
    "http://127.0.0.1:3000/api/parser/input" \
    | python3 -c '
import json, sys
lines = json.load(sys.stdin)["lines"][1:]
for l in lines:
    print(("error: " if l.get("kind") == "error" else "") + l.get("text", ""))'
}

# The node's peer id, from `node`.
peer_id() { terminal "$1" node | sed -n 's/^id  *//p' | head -1; }

VOLS=(-v p2pnet-check-data:/var/lib/p2pnet/data -v p2pnet-check-keys:/var/lib/p2pnet/keys)

log "checks"
user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
uid=$(docker run --rm --network none --entrypoint id "$IMAGE" -u)
if [ "$user" = p2pnet ] && [ "$uid" != 0 ]; then
  record "runs as a non-root user" OK "USER $user, uid $uid"
else
  record "runs as a non-root user" FAIL "USER '$user', uid $uid"
fi

# 1. No NET_RAW at all: the server must still start.
run_server p2pnet-check --network none --cap-drop ALL "${VOLS[@]}"
t0=$(date +%s)
health=$(wait_healthy p2pnet-check 90)
if [ "$health" = healthy ]; then
  record "HEALTHCHECK turns healthy" OK "after $(( $(date +%s) - t0 )) s (interval 30 s)"
else
  record "HEALTHCHECK turns healthy" FAIL "status $health; $(docker logs --tail 5 p2pnet-check 2>&1 | tr '\n' ' ')"
fi

code_ok=$(ncurl p2pnet-check -o /dev/null -w '%{http_code}' -H "Host: $HOSTNAME_OK" http://127.0.0.1:3000/login || true)
code_bad=$(ncurl p2pnet-check -o /dev/null -w '%{http_code}' -H "Host: rebound.attacker.test" http://127.0.0.1:3000/login || true)
if [ "$code_ok" = 200 ] && [ "$code_bad" = 421 ]; then
  record "panel answers its host names only" OK "$HOSTNAME_OK → $code_ok, other → $code_bad"
else
  record "panel answers its host names only" FAIL "$HOSTNAME_OK → $code_ok, other → $code_bad"
fi

if login p2pnet-check; then
  record "admin logs in" OK "session cookie and CSRF token"
else
  record "admin logs in" FAIL "no session"
fi

id_before=$(peer_id p2pnet-check || true)
scan_out=$(terminal p2pnet-check "scan start -p $PREFIX --rate 1000" || true)
scan_id=$(printf '%s\n' "$scan_out" | grep -o 'job [0-9]*' | head -1 | tr -dc 0-9 || true)
sleep 2
shown=$( { [ -n "$scan_id" ] && terminal p2pnet-check "scan show $scan_id"; } || printf '%s' "$scan_out")
if printf '%s' "$shown" | grep -q CAP_NET_RAW; then
  record "without NET_RAW: starts, refuses scans" OK "$(printf '%s' "$shown" | grep -m1 -o 'no permission[^(]*' || echo CAP_NET_RAW named)"
else
  record "without NET_RAW: starts, refuses scans" FAIL "$(printf '%s' "$shown" | head -3 | tr '\n' ' ')"
fi

# 2. The container replaced by a new one on the same volumes.
docker rm -f p2pnet-check >/dev/null
# Docker turns IPv6 off inside containers unless asked; the scan needs it.
run_server p2pnet-check --network none --cap-drop ALL --cap-add NET_RAW "${VOLS[@]}" \
  --sysctl net.ipv6.conf.all.disable_ipv6=0 --sysctl net.ipv6.conf.default.disable_ipv6=0
health=$(wait_healthy p2pnet-check 90)
login p2pnet-check || true
id_after=$(peer_id p2pnet-check || true)
if [ -n "$id_before" ] && [ "$id_before" = "$id_after" ] && [ "$health" = healthy ]; then
  record "keys persist in their volume" OK "peer id ${id_after:0:16}… kept"
else
  record "keys persist in their volume" FAIL "before '${id_before:0:16}', after '${id_after:0:16}', $health"
fi
jobs=$(terminal p2pnet-check "scan list" || true)
if [ -n "$COOKIE" ] && printf '%s' "$jobs" | grep -q "$PREFIX"; then
  record "data persists in its volume" OK "login, scan job $scan_id kept"
else
  record "data persists in its volume" FAIL "$(printf '%s' "$jobs" | head -2 | tr '\n' ' ')"
fi

# 3. With NET_RAW: a scan over a prefix on a veth pair inside the
# container (its own address answers; the rest of the /120 is silent).
pid=$(pid_of p2pnet-check)
nsenter -t "$pid" -n ip link add check0 type veth peer name check1
nsenter -t "$pid" -n ip link set check0 up
nsenter -t "$pid" -n ip link set check1 up
nsenter -t "$pid" -n ip addr add "$PREFIX_SELF/120" dev check0 nodad
scan_out=$(terminal p2pnet-check "scan start -p $PREFIX --rate 2000" || true)
scan_id=$(printf '%s\n' "$scan_out" | grep -o 'job [0-9]*' | head -1 | tr -dc 0-9 || true)
shown=""
for _ in $(seq 60); do
  [ -n "$scan_id" ] || break
  shown=$(terminal p2pnet-check "scan show $scan_id" || true)
  printf '%s' "$shown" | grep -qiE 'completed|failed' && break
  sleep 1
done
hits=$(printf '%s' "$shown" | sed -n 's/^found *\([0-9]*\) hits.*/\1/p')
if printf '%s' "$shown" | grep -qi completed && [ "${hits:-0}" -ge 1 ]; then
  record "with NET_RAW: a scan runs" OK "job $scan_id completed, $hits hit(s) (its own $PREFIX_SELF)"
else
  record "with NET_RAW: a scan runs" FAIL "$(printf '%s' "${shown:-$scan_out}" | head -4 | tr '\n' ' ')"
fi
docker rm -f p2pnet-check >/dev/null

# 4. On PostgreSQL, in a second container sharing the database's namespace.
docker run -d --name p2pnet-check-pg --network none \
  -e POSTGRES_USER=p2pnet -e POSTGRES_PASSWORD=check-pg-password -e POSTGRES_DB=p2pnet \
  -v p2pnet-check-pgdata:/var/lib/postgresql/data "$PG_BASE" >/dev/null
for _ in $(seq 60); do
  docker exec p2pnet-check-pg pg_isready -q -h 127.0.0.1 -U p2pnet 2>/dev/null && break
  sleep 0.5
done
onpg() {
  run_server p2pnet-check-onpg --network container:p2pnet-check-pg --cap-drop ALL \
    -e P2PNET_DATABASE__URL=postgres://p2pnet:check-pg-password@127.0.0.1:5432/p2pnet
}
onpg
health=$(wait_healthy p2pnet-check-onpg 90)
login p2pnet-check-onpg || true
terminal p2pnet-check-onpg "block 198.51.100.0/24" >/dev/null || true
docker rm -f p2pnet-check-onpg >/dev/null
onpg
health2=$(wait_healthy p2pnet-check-onpg 90)
login p2pnet-check-onpg || true
tables=$(docker exec p2pnet-check-pg psql -U p2pnet -d p2pnet -Atc \
  "select count(*) from information_schema.tables where table_schema = 'public'" 2>/dev/null || echo 0)
# The block the first container made is in the database the second reads.
kept=$(docker exec p2pnet-check-pg psql -U p2pnet -d p2pnet -Atc \
  "select count(*) from access_list where target = '198.51.100.0/24'" 2>/dev/null || echo 0)
if [ "$health" = healthy ] && [ "$health2" = healthy ] && [ -n "$COOKIE" ] \
    && [ "${tables:-0}" -gt 0 ] && [ "${kept:-0}" = 1 ]; then
  record "on PostgreSQL (second container)" OK "healthy twice, $tables tables, a block kept across containers"
else
  record "on PostgreSQL (second container)" FAIL "health $health/$health2, $tables tables, block kept: $kept"
fi

# The compose file itself: its services, volumes and capabilities as the
# engine reads them (running it needs a bridge network and registry images).
if compose=$(docker-compose -f docker-compose.yml config 2>"$WORK/compose.log") \
    && printf '%s' "$compose" | grep -q 'NET_RAW' \
    && printf '%s' "$compose" | grep -q 'condition: service_healthy'; then
  record "docker-compose.yml is valid" OK "docker-compose config: 2 services, NET_RAW only"
else
  record "docker-compose.yml is valid" FAIL "$(head -2 "$WORK/compose.log" | tr '\n' ' ')"
fi

# ---------------------------------------------------------------- summary
printf '\nimage %s: %s MB, built in %d s\n\n' "$IMAGE" "$(( image_bytes / 1000000 ))" "$build_secs"
printf '| %-34s | %-4s | %s |\n|%s|%s|%s|\n' check ok detail "$(printf -- '-%.0s' {1..36})" ------ --------
printf '%s\n' "${results[@]}"
if [ "$failed" -gt 0 ]; then
  printf '\n%d check(s) failed\n' "$failed"
  exit 1
fi
printf '\nevery check passed\n'
}
main "$@"
