# Two network namespaces joined by a veth pair, for the link scripts
# (netem.sh, throttle.sh); sourced, not run. It gives:
# - $work, a temporary directory, and pids, the processes started: on exit
#   each is killed by pid, the namespaces are deleted and $work removed;
# - skip REASON: says SKIPPED and exits 0 (1 with REQUIRE_NETNS=1);
# - netns_pair TAG NET: checks for root and iproute2 (else skip), builds the
#   release rtmpkit ($bin), and makes namespaces $srv and $pub joined by a
#   veth pair ($srv_dev with NET.1, $pub_dev with NET.2, NET a /24 prefix
#   such as 10.77.0), every link up. The addresses exist only inside them.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
pids=()
srv=""
pub=""

skip() {
  echo "SKIPPED: $1"
  [ "${REQUIRE_NETNS:-0}" = 1 ] && exit 1
  exit 0
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -n "$pub" ] && ip netns del "$pub" 2>/dev/null
  [ -n "$srv" ] && ip netns del "$srv" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

netns_pair() { # TAG NET
  [ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
  command -v ip >/dev/null && command -v tc >/dev/null || skip "needs iproute2 (ip, tc)"
  cargo build --release -q -p rtmpkit-cli --manifest-path "$root/Cargo.toml" || exit 1
  bin="$root/target/release/rtmpkit"
  ip netns add "rtmpkit-$1-srv-$$" 2>/dev/null || skip "cannot create network namespaces here"
  srv="rtmpkit-$1-srv-$$"
  ip netns add "rtmpkit-$1-pub-$$" || exit 1
  pub="rtmpkit-$1-pub-$$"
  srv_dev="veth-$1-s"
  pub_dev="veth-$1-p"
  ip link add "$srv_dev" netns "$srv" type veth peer name "$pub_dev" netns "$pub" ||
    skip "cannot create a veth pair"
  ip -n "$srv" addr add "$2.1/24" dev "$srv_dev"
  ip -n "$pub" addr add "$2.2/24" dev "$pub_dev"
  for ns in "$srv" "$pub"; do ip -n "$ns" link set lo up; done
  ip -n "$srv" link set "$srv_dev" up
  ip -n "$pub" link set "$pub_dev" up
}
