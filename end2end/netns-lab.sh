#!/usr/bin/env bash
# A throw-away LAN for the widescan end-to-end test: network namespaces on
# a bridge, nothing in (or sent into) the root namespace.
#
#   netns-lab.sh up TAG     scanner ::1, live ::10 and ::20, silent ::30
#                           (ignores echo requests), peer ::40, on
#                           fd00:5ca7:4::/64; namespaces TAG-sw, TAG-s,
#                           TAG-l1, TAG-l2, TAG-q, TAG-p
#   netns-lab.sh down TAG   deletes every namespace of TAG
set -euo pipefail
cmd=${1:?up or down}
tag=${2:?a tag}

down() {
  for ns in $(ip netns list | awk '{print $1}' | grep "^$tag-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}

host() { # short address
  local ns="$tag-$1"
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip -n "$ns" link set lo up
  ip link add eth0 netns "$ns" type veth peer name "p$1" netns "$tag-sw"
  ip -n "$tag-sw" link set "p$1" master br0 up
  ip -n "$ns" addr add "$2/64" dev eth0 nodad
  ip -n "$ns" link set eth0 up
}

case "$cmd" in
  up)
    down
    trap down ERR
    ip netns add "$tag-sw"
    ip -n "$tag-sw" link add br0 type bridge mcast_snooping 0
    ip -n "$tag-sw" link set br0 up
    host s fd00:5ca7:4::1
    host l1 fd00:5ca7:4::10
    host l2 fd00:5ca7:4::20
    host q fd00:5ca7:4::30
    host p fd00:5ca7:4::40
    ip netns exec "$tag-q" sysctl -qw net.ipv6.icmp.echo_ignore_all=1
    ;;
  down) down ;;
  *) echo "usage: $0 up|down TAG" >&2; exit 2 ;;
esac
