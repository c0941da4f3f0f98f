#!/usr/bin/env bash
# rtmpkit serve against SRS, the same `bench play` load at each latency
# setting, one server after the other, alternating rounds:
# - SRS with its defaults (merged writes of 350 ms), with `mw_latency 100`,
#   and with batching off (tcp_nodelay, min_latency, mw_latency 0);
# - rtmpkit with --max-write-delay-ms 350, 100 (its default) and 0.
# Prints each one's server CPU (% of a core; user and kernel apart, and µs
# per message a player received), RSS and latency p99, and rtmpkit's CPU
# against SRS's at equal latency.
#
#   bench/srs.sh [PLAYERS] [SECONDS] [ROUNDS]   (default 2000, 20 s, 2 rounds)
#   SRS_BIN=/path/to/srs   (default ../shared/peers/srs/srs; build it from
#                           ossrs/srs with --rtc=off --srt=off, see README)
#   BIN=/path/to/rtmpkit   (default: a release build of this checkout)
#
# The stream is the "low" one: 320x180 H.264 200k + AAC 32k (255 kbit/s).
# Listens on 127.0.0.1 only; every process started here is stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
players=${1:-2000}
secs=${2:-20}
rounds=${3:-2}
srs=${SRS_BIN:-../shared/peers/srs/srs}
if [ ! -x "$srs" ]; then
  echo "SKIPPED: no SRS binary at $srs (set SRS_BIN; see the README for how to build it)"
  exit 0
fi
srs=$(realpath "$srs")
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p rtmpkit-cli
  BIN=$PWD/target/release/rtmpkit
fi
. bench/lib.sh

input=$work/low.flv
low_stream "$input"

# Starts server $1 (srs|rtmpkit) at latency $2 ms on port $3; prints its pid.
start() {
  local kind=$1 delay=$2 port=$3
  if [ "$kind" = srs ]; then
    local vhost=""
    case $delay in
      350) ;;
      0) vhost="tcp_nodelay on; min_latency on; play { mw_latency 0; }" ;;
      *) vhost="play { mw_latency $delay; }" ;;
    esac
    mkdir -p "$work/srs-$port"
    cat >"$work/srs-$port/srs.conf" <<CONF
listen              127.0.0.1:$port;
max_connections     $((players + 1000));
daemon              off;
pid                 $work/srs-$port/srs.pid;
srs_log_tank        file;
srs_log_file        $work/srs-$port/srs.log;
vhost __defaultVhost__ {
    $vhost
}
CONF
    (cd "$work/srs-$port" && exec "$srs" -c srs.conf >/dev/null 2>&1) &
  else
    "$BIN" -q serve --listen "127.0.0.1:$port" --max-write-delay-ms "$delay" >/dev/null &
  fi
  echo $!
}

declare -A CPU USR SYS USM RSS LAT
configs="srs:350 rtmpkit:350 srs:100 rtmpkit:100 srs:0 rtmpkit:0"
for r in $(seq "$rounds"); do
  for c in $configs; do
    kind=${c%%:*}
    delay=${c##*:}
    port=$((20000 + RANDOM % 12000))
    pid=$(start "$kind" "$delay" "$port")
    pids+=("$pid")
    wait_port "$port"
    out=$("$BIN" bench play "rtmp://127.0.0.1:$port/live/s" -n "$players" --duration "$secs" \
      --input "$input" --server-pid "$pid" 2>/dev/null | grep '^RESULT' || true)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "round $r $kind $delay ms: CPU $(val server_cpu_pct "$out") %, RSS $(val server_rss_kib "$out") KiB, p99 $(val lat_p99_ms "$out") ms, playing $(val playing "$out")/$players, behind $(val behind "$out")"
    CPU[$c]="${CPU[$c]:-} $(val server_cpu_pct "$out")"
    USR[$c]="${USR[$c]:-} $(val server_user_pct "$out")"
    SYS[$c]="${SYS[$c]:-} $(val server_sys_pct "$out")"
    USM[$c]="${USM[$c]:-} $(val server_us_per_msg "$out")"
    RSS[$c]="${RSS[$c]:-} $(val server_rss_kib "$out")"
    LAT[$c]="${LAT[$c]:-} $(val lat_p99_ms "$out")"
    sleep 2
  done
done
mean() { awk '{s=0; for (i=1;i<=NF;i++) s+=$i; if (NF) printf "%.2f", s/NF; else printf "?"}' <<<"$1"; }
echo
echo "| server, latency setting | CPU % of a core | user % | kernel % | µs CPU per delivered message | RSS KiB per player | latency p99 ms |"
echo "|---|---|---|---|---|---|---|"
for c in $configs; do
  rss=$(mean "${RSS[$c]}")
  echo "| ${c%%:*}, ${c##*:} ms | $(mean "${CPU[$c]}") | $(mean "${USR[$c]}") | $(mean "${SYS[$c]}") | $(mean "${USM[$c]}") | $(awk -v r="$rss" -v n="$players" 'BEGIN{printf "%.1f", r/n}') | $(mean "${LAT[$c]}") |"
done
echo
for d in 350 100 0; do
  a=$(mean "${CPU[rtmpkit:$d]}")
  b=$(mean "${CPU[srs:$d]}")
  echo "at $d ms: rtmpkit / SRS server CPU = $(awk -v a="$a" -v b="$b" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "?" }')"
done
