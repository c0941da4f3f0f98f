#!/usr/bin/env bash
# Two builds of `rtmpkit serve` under the same player load, one after the
# other, alternating: each build's server CPU (% of a core) and RSS, and
# the ratio B / A. For a change that touches every session (a registry, a
# lock, a counter), compare the commit before it with the one after.
#
#   BIN_A=/old/rtmpkit BIN_B=/new/rtmpkit bench/ab.sh [PLAYERS] [SECONDS] [ROUNDS] [DELAY_MS]
#   (defaults: 2000 players, 20 s, 2 rounds, --max-write-delay-ms 100)
#
# Build the old one in a worktree so that nothing here is rebuilt:
#   git worktree add /tmp/ab/old REV
#   (cd /tmp/ab/old && CARGO_TARGET_DIR=/tmp/ab/target cargo build --release -p rtmpkit-cli)
#
# The load tool is B's `bench play` for both. Listens on 127.0.0.1 only;
# every process started here is stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
players=${1:-2000}
secs=${2:-20}
rounds=${3:-2}
delay=${4:-100}
: "${BIN_A:?BIN_A=/path/to/the/old/rtmpkit}"
: "${BIN_B:?BIN_B=/path/to/the/new/rtmpkit}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
. bench/lib.sh

# The "low" stream (lib.sh).
input=$work/low.flv
low_stream "$input"


declare -A CPU RSS
for r in $(seq "$rounds"); do
  for side in A B; do
    bin=BIN_$side
    port=$((20000 + RANDOM % 12000))
    "${!bin}" -q serve --listen "127.0.0.1:$port" --max-write-delay-ms "$delay" >/dev/null &
    pid=$!
    pids+=("$pid")
    wait_port "$port"
    out=$("$BIN_B" bench play "rtmp://127.0.0.1:$port/live/ab" -n "$players" --duration "$secs" \
      --input "$input" --server-pid "$pid" 2>/dev/null | grep '^RESULT' || true)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    cpu=$(val server_cpu_pct "$out")
    rss=$(val server_rss_kib "$out")
    echo "round $r $side: server CPU ${cpu:-?} %, RSS ${rss:-?} KiB, playing $(val playing "$out")/$players, behind $(val behind "$out")"
    CPU[$side]="${CPU[$side]:-} $cpu"
    RSS[$side]="${RSS[$side]:-} $rss"
    sleep 1
  done
done
mean() { awk '{s=0; for (i=1;i<=NF;i++) s+=$i; printf "%.2f", s/NF}' <<<"$1"; }
a=$(mean "${CPU[A]}")
b=$(mean "${CPU[B]}")
echo "mean server CPU: A ${a} %, B ${b} % (B/A $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", b/a}'))"
echo "mean RSS: A $(mean "${RSS[A]}") KiB, B $(mean "${RSS[B]}") KiB"
