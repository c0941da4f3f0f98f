#!/usr/bin/env bash
# A lossy, slow link: a publisher in one network namespace pushes to
# `rtmpkit serve` in another over a veth pair with tc netem (DELAY_MS each
# way, so twice that RTT, and LOSS_PCT loss each way); a player on the
# server's side must get every frame the publisher sent.
#
#   sudo bench/netem.sh          (DELAY_MS=100 LOSS_PCT=2)
#
# Needs root and iproute2 (ip, tc) with the netem qdisc, or nftables and tbf
# where the kernel lacks netem (then without the delay). The namespaces,
# the veth pair and their addresses (10.77.0.0/24) exist only inside
# namespaces this script makes, and are removed at the end; every process
# it starts is stopped by pid. Where namespaces cannot be made, it says why
# and exits 0 (SKIPPED), or 1 with REQUIRE_NETNS=1.
set -uo pipefail
source "$(dirname "$0")/netns.sh"
delay=${DELAY_MS:-100}
loss=${LOSS_PCT:-2}
netns_pair rk 10.77.0
input="$root/tests/fixtures/sample-5s.flv"

# Each direction: netem delay + loss where the kernel has netem; without it
# (some VM kernels have no sch_netem), loss by nftables (numgen random) and a
# tbf rate limit, with no added delay, and the script says so.
impair() { # NS DEV
  if ip netns exec "$1" tc qdisc add dev "$2" root netem delay "${delay}ms" loss "${loss}%" 2>/dev/null; then
    mode=netem
    return 0
  fi
  command -v nft >/dev/null || skip "no netem qdisc in this kernel and no nft for loss"
  ip netns exec "$1" nft add table inet rtmpkit_netem &&
    ip netns exec "$1" nft add chain inet rtmpkit_netem out '{ type filter hook output priority 0; }' &&
    ip netns exec "$1" nft add rule inet rtmpkit_netem out oifname "$2" numgen random mod 100 '<' "$loss" counter drop ||
    skip "nftables cannot drop packets here"
  ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "${RATE:-20mbit}" burst 64kb latency 200ms ||
    skip "no tbf qdisc"
  mode=nft
}
mode=""
impair "$srv" "$srv_dev"
impair "$pub" "$pub_dev"
if [ "$mode" = netem ]; then
  echo "== link (tc netem): ${delay} ms each way (RTT $((2 * delay)) ms), ${loss}% loss each way"
else
  echo "== link: no netem in this kernel ($(uname -r)); ${loss}% loss each way (nftables), ${RATE:-20mbit} rate limit (tbf), no added delay"
fi

ip netns exec "$srv" "$bin" serve --listen 0.0.0.0:1935 >"$work/serve.log" 2>&1 &
pids+=($!)
sleep 0.5
ip netns exec "$srv" "$bin" -q pull rtmp://127.0.0.1/live/n -o "$work/out.flv" --duration 120 &
player=$!
pids+=($player)
sleep 0.3
start=$(date +%s.%N)
if ! ip netns exec "$pub" "$bin" push "$input" rtmp://10.77.0.1/live/n; then
  echo "FAILED: the publisher could not push over the lossy link"
  exit 1
fi
took=$(echo "$(date +%s.%N) - $start" | bc)
wait "$player"
count() {
  python3 - "$1" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
pos, n = 13, 0
while pos + 11 <= len(d):
    size = int.from_bytes(d[pos + 1:pos + 4], "big")
    if pos + 11 + size > len(d):
        break
    n += d[pos] in (8, 9)
    pos += 15 + size
print(n)
PY
}
sent=$(count "$input")
got=$(count "$work/out.flv")
echo "publisher: 5 s of media pushed in ${took} s; player on the server: $got of $sent audio/video frames"
if [ "$mode" = nft ]; then
  for ns in "$pub" "$srv"; do
    echo "packets dropped leaving $ns: $(ip netns exec "$ns" nft list table inet rtmpkit_netem | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')"
  done
fi
if [ "$got" != "$sent" ]; then
  echo "FAILED: the player lost $((sent - got)) frames"
  exit 1
fi
echo "OK: every frame arrived over the lossy link ($mode)"
