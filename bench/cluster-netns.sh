#!/usr/bin/env bash
# A three-node cluster across network namespaces: the origin node A, Redis
# and the publisher in one namespace; edge nodes B and C each in their own,
# joined to A's by a veth pair. Players on B and C (rtmpkit bench play in
# the edges' namespaces) watch one stream published to A. For each step of
# players per edge, it prints each node's CPU and the players it serves,
# and checks that A's CPU does not grow with the players on the edges
# (A serves one pull per edge, whatever the number of players).
#
#   sudo bench/cluster-netns.sh            (STEPS="50 200 500" SECS=10)
#
# Needs root, iproute2 and redis-server. The namespaces, the veth pairs and
# their addresses (10.78.1.0/30, 10.78.2.0/30) exist only inside namespaces
# this script makes, and are removed at the end; every process it starts is
# stopped by pid. Where namespaces cannot be made, it says why and exits 0
# (SKIPPED), or 1 with REQUIRE_NETNS=1.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
steps=${STEPS:-50 200 500}
secs=${SECS:-10}
tag=$$
nsa=rtmpkit-cl-a-$tag
nsb=rtmpkit-cl-b-$tag
nsc=rtmpkit-cl-c-$tag
work=$(mktemp -d)
pids=()

skip() {
  echo "SKIPPED: $1"
  [ "${REQUIRE_NETNS:-0}" = 1 ] && exit 1
  exit 0
}
cleanup() {
  # Newest first: players and the publisher before the servers.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null
    wait "${pids[i]}" 2>/dev/null
  done
  for ns in "$nsa" "$nsb" "$nsc"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null || skip "needs iproute2 (ip)"
command -v redis-server >/dev/null || skip "needs redis-server"
cargo build --release -q -p rtmpkit-cli --manifest-path "$root/Cargo.toml" || exit 1
bin="$root/target/release/rtmpkit"
input="$root/tests/fixtures/sample-5s.flv"

ip netns add "$nsa" 2>/dev/null || skip "cannot create network namespaces here"
ip netns add "$nsb" || exit 1
ip netns add "$nsc" || exit 1
ip link add veth-rk-ab netns "$nsa" type veth peer name veth-rk-b netns "$nsb" || skip "cannot create a veth pair"
ip link add veth-rk-ac netns "$nsa" type veth peer name veth-rk-c netns "$nsc" || exit 1
ip -n "$nsa" addr add 10.78.1.1/30 dev veth-rk-ab
ip -n "$nsb" addr add 10.78.1.2/30 dev veth-rk-b
ip -n "$nsa" addr add 10.78.2.1/30 dev veth-rk-ac
ip -n "$nsc" addr add 10.78.2.2/30 dev veth-rk-c
for ns in "$nsa" "$nsb" "$nsc"; do ip -n "$ns" link set lo up; done
ip -n "$nsa" link set veth-rk-ab up
ip -n "$nsa" link set veth-rk-ac up
ip -n "$nsb" link set veth-rk-b up
ip -n "$nsc" link set veth-rk-c up

ip netns exec "$nsa" redis-server --bind 0.0.0.0 --port 6379 --protected-mode no \
  --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
sleep 0.5
node() { # NS ADDR NAME REDIS_ADDR
  ip netns exec "$1" "$bin" serve --listen "$2:1935" --http-listen "127.0.0.1:8080" \
    --cluster "redis://$4:6379" --advertise "rtmp://$2:1935" >"$work/$3.log" 2>&1 &
  pids+=($!)
  eval "pid_$3=$!"
}
node "$nsa" 10.78.1.1 a 127.0.0.1
node "$nsb" 10.78.1.2 b 10.78.1.1
node "$nsc" 10.78.2.2 c 10.78.2.1
sleep 0.5
# A advertises 10.78.1.1; C reaches that address over its own link to A.
ip -n "$nsc" route add 10.78.1.0/30 via 10.78.2.1
ip netns exec "$nsa" "$bin" -q push --loop "$input" rtmp://10.78.1.1/live/cam 2>"$work/push.log" &
pids+=($!)
sleep 1

cpu() { # PID -> CPU ticks (user + system)
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
players() { # NS -> players of live/cam on that node
  ip netns exec "$1" python3 -c 'import json, urllib.request as u
d = json.load(u.urlopen("http://127.0.0.1:8080/stats", timeout=5))
print(sum(s["players"] for s in d["streams"] if s["name"] == "live/cam"))'
}
hz=$(getconf CLK_TCK)
echo "| players per edge | node | CPU % of a core | players served | source | delivered to its players |"
echo "|---|---|---|---|---|---|"
declare -A CPU
fail=0
for n in $steps; do
  ip netns exec "$nsb" "$bin" bench play rtmp://10.78.1.2/live/cam -n "$n" --duration $((secs + 10)) >"$work/play-b.txt" 2>&1 &
  pb=$!
  ip netns exec "$nsc" "$bin" bench play rtmp://10.78.2.2/live/cam -n "$n" --duration $((secs + 10)) >"$work/play-c.txt" 2>&1 &
  pc=$!
  pids+=($pb $pc)
  sleep 3
  declare -A before
  for x in a b c; do p="pid_$x"; before[$x]=$(cpu "${!p}"); done
  sleep "$secs"
  for x in a b c; do
    p="pid_$x"
    CPU[$n,$x]=$(awk -v a="${before[$x]}" -v b="$(cpu "${!p}")" -v hz="$hz" -v s="$secs" \
      'BEGIN { printf "%.1f", (b - a) * 100 / hz / s }')
  done
  served_a=$(players "$nsa")
  served_b=$(players "$nsb")
  served_c=$(players "$nsc")
  wait "$pb" "$pc"
  mbps() { sed -n 's/^RESULT play .* mbps=\([0-9.]*\).*/\1/p' "$1"; }
  echo "| $n | A (origin) | ${CPU[$n,a]} | $served_a (the edges' pulls) | publisher | |"
  echo "| $n | B (edge) | ${CPU[$n,b]} | $served_b | pull from A | $(mbps "$work/play-b.txt") Mbit/s |"
  echo "| $n | C (edge) | ${CPU[$n,c]} | $served_c | pull from A | $(mbps "$work/play-c.txt") Mbit/s |"
  [ "$served_b" = "$n" ] && [ "$served_c" = "$n" ] || { echo "FAILED: edges serve $served_b and $served_c players, not $n each"; fail=1; }
  [ "$served_a" = 2 ] || { echo "FAILED: the origin serves $served_a players, not the 2 edge pulls"; fail=1; }
done
first=${steps%% *}
last=${steps##* }
echo
echo "origin CPU: ${CPU[$first,a]}% at $first players per edge, ${CPU[$last,a]}% at $last; edges: ${CPU[$first,b]}/${CPU[$first,c]}% -> ${CPU[$last,b]}/${CPU[$last,c]}%"
# Flat: the origin's CPU at the largest step is within 1 point of a core,
# or 50 %, of the smallest step's.
awk -v f="${CPU[$first,a]}" -v l="${CPU[$last,a]}" 'BEGIN { exit !(l <= f * 1.5 + 1) }' ||
  { echo "FAILED: the origin's CPU grew with the players on the edges"; fail=1; }
[ "$fail" = 0 ] && echo "OK: the origin's CPU does not grow with the players on the edges"
exit "$fail"
