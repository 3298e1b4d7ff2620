#!/usr/bin/env bash
# Two homes on the internet, as friends use a relay on a public host: network namespaces for a
# "public" network with the relay on it, two routers that source-NAT their home (nft masquerade,
# as an ordinary home router does), and one Chromium in each home. Then
# e2e/tests-homes/homes.test.js runs inside the public namespace, starts the relay there and
# drives the two browsers (each launched through `ip netns exec` into its home).
#
#   192.0.2.1  relay            (public, a bridge)
#   192.0.2.11 router 1 (wan) -- 10.0.1.1 (lan) -- 10.0.1.2 home 1
#   192.0.2.12 router 2 (wan) -- 10.0.2.1 (lan) -- 10.0.2.2 home 2
#
# No home can reach the other's private address: a direct link needs each tab's public address
# and port, which only STUN tells it. Needs root (`ip netns`, nft). Usage:
#   e2e/homes.sh RELAY_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
relay_bin="$1"

tag="tc$$"
pub="$tag-pub"
spaces=("$pub")
cleanup() {
  for space in "${spaces[@]}"; do ip netns del "$space" 2>/dev/null || true; done
  rm -rf "${wrappers:-}"
}
trap cleanup EXIT

ip netns add "$pub"
ip -n "$pub" link set lo up
ip -n "$pub" link add br0 type bridge
ip -n "$pub" addr add 192.0.2.1/24 dev br0
ip -n "$pub" link set br0 up

wrappers=$(mktemp -d)
for i in 1 2; do
  router="$tag-r$i"
  home="$tag-h$i"
  spaces+=("$router" "$home")
  ip netns add "$router"
  ip netns add "$home"
  ip -n "$router" link set lo up
  ip -n "$home" link set lo up
  # The router's wan side on the public bridge, its lan side facing the home.
  ip link add "wan$i" netns "$pub" type veth peer name wan netns "$router"
  ip -n "$pub" link set "wan$i" master br0 up
  ip -n "$router" addr add "192.0.2.1$i/24" dev wan
  ip -n "$router" link set wan up
  ip link add lan netns "$router" type veth peer name eth0 netns "$home"
  ip -n "$router" addr add "10.0.$i.1/24" dev lan
  ip -n "$router" link set lan up
  ip -n "$home" addr add "10.0.$i.2/24" dev eth0
  ip -n "$home" link set eth0 up
  ip -n "$home" route add default via "10.0.$i.1"
  ip netns exec "$router" sysctl -qw net.ipv4.ip_forward=1
  # An ordinary home router: everything from the home leaves with the router's address (the
  # source port kept where it is free); only answers to what the home sent come back in, and
  # the router itself takes nothing new from outside. (That last rule matters for direct links:
  # a packet the router accepted for itself would leave a connection entry behind, and the
  # home's own packet to that peer a moment later would then leave on another port.)
  ip netns exec "$router" nft -f - <<NFT
table ip home {
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan" masquerade; }
  chain forward {
    type filter hook forward priority filter; policy drop;
    iifname "lan" accept
    ct state established,related accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan" ct state new drop
  }
}
NFT
  # Chromium in this home: Playwright starts this instead of /usr/bin/chromium (the DevTools
  # pipe, file descriptors 3 and 4, passes through `ip netns exec`).
  cat >"$wrappers/chromium-home$i" <<WRAP
#!/bin/sh
exec ip netns exec $home /usr/bin/chromium "\$@"
WRAP
  chmod +x "$wrappers/chromium-home$i"
done

ip netns exec "$pub" env \
  E2E_BASE="http://192.0.2.1:3030" \
  E2E_RELAY_BIN="$relay_bin" \
  E2E_HOME1_CHROMIUM="$wrappers/chromium-home1" \
  E2E_HOME2_CHROMIUM="$wrappers/chromium-home2" \
  node --test --test-concurrency=1 --test-timeout=300000 e2e/tests-homes/
