#!/usr/bin/env bash
# Each server at each latency setting, under the same `bench play` load,
# one after the other, on 127.0.0.1 only:
# - SRS with its defaults (writes merged for 350 ms), with `mw_latency 100`,
#   and with batching off (tcp_nodelay on; min_latency on; mw_latency 0);
# - nginx-rtmp (no batching: 0 ms);
# - rtmpkit with --max-write-delay-ms 350, 100 (its default) and 0.
# For each load it prints each one's server CPU (% of a core, user and
# kernel apart), µs of server CPU per message a player received, RSS per
# player and latency p99, then rtmpkit's CPU against the others' at equal
# latency. Each load also gets the kernel's floor for its writes: a C program
# (../shared/tools/fanout-floor.c, built here with gcc when both are there)
# writing N loopback sockets one write per message, at the stream's message
# rate and bitrate. Then, with no added latency, the most players of the low
# stream each server keeps in real time (all playing, none behind, p99
# under 1 s).
#
#   bench/latency.sh [SECONDS] [ROUNDS]       (default 20 s, 1 round)
#   LOADS="low:2000 low:4000 big:500"         (the default: stream:players)
#   LADDER="2000 4000 6000 8000 9000"         (the default; LADDER="" skips it;
#                                              2 descriptors a player here)
#   SRS_BIN=/path/to/srs   (default ../shared/peers/srs/srs; without a binary
#                           the SRS rows are left out with a note; build it
#                           from ossrs/srs with --rtc=off --srt=off, see README)
#   BIN=/path/to/rtmpkit   (default: a release build of this checkout)
#
# "low" is 320x180 H.264 200k + AAC 32k (255 kbit/s), made here with
# ffmpeg; "big" is the 4.4 Mbit/s 720p sample (../shared/media, or made
# here). Needs nginx + libnginx-mod-rtmp. Every process started here is
# stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
rounds=${2:-1}
loads=${LOADS:-"low:2000 low:4000 big:500"}
ladder=${LADDER-"2000 4000 6000 8000 9000"}
srs=${SRS_BIN:-../shared/peers/srs/srs}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p rtmpkit-cli
  BIN=$PWD/target/release/rtmpkit
fi
. bench/lib.sh

configs="rtmpkit:350 rtmpkit:100 rtmpkit:0 nginx:0"
if [ -x "$srs" ]; then
  srs=$(realpath "$srs")
  configs="srs:350 $configs srs:100 srs:0"
else
  echo "SKIPPED: SRS (no binary at $srs; set SRS_BIN, see the README for how to build it)"
fi

low=$work/low.flv
low_stream "$low"
big=$(big_stream)

# Starts server $1 (srs|nginx|rtmpkit) at latency $2 ms on port $3; prints its pid.
start() {
  case $1 in
    srs) start_srs "$3" "$2" ;;
    nginx) start_nginx "$3" ;;
    *)
      "$BIN" -q serve --listen "127.0.0.1:$3" --max-write-delay-ms "$2" >/dev/null &
      echo $!
      ;;
  esac
}

# Runs config $1 (server:delay) with $2 players of input $3; sets `out`
# to the RESULT line.
measure() {
  local kind=${1%%:*} delay=${1##*:} n=$2 input=$3 port pid
  port=$((20000 + RANDOM % 12000))
  pid=$(start "$kind" "$delay" "$port")
  pids+=("$pid")
  wait_port "$port"
  out=$("$BIN" bench play "rtmp://127.0.0.1:$port/live/s" -n "$n" --duration "$secs" \
    --input "$input" --server-pid "$pid" 2>/dev/null | grep '^RESULT' || true)
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  sleep 2
}

declare -A M
keys="server_cpu_pct server_user_pct server_sys_pct server_us_per_msg server_rss_kib lat_p99_ms playing behind"
for load in $loads; do
  stream=${load%%:*}
  n=${load##*:}
  input=$low
  [ "$stream" = big ] && input=$big
  for r in $(seq "$rounds"); do
    for c in $configs; do
      measure "$c" "$n" "$input"
      echo "$load round $r $c: CPU $(val server_cpu_pct "$out") % (user $(val server_user_pct "$out"), kernel $(val server_sys_pct "$out")), p99 $(val lat_p99_ms "$out") ms, playing $(val playing "$out")/$n, behind $(val behind "$out")" >&2
      for k in $keys; do M[$load,$c,$k]="${M[$load,$c,$k]:-} $(val "$k" "$out")"; done
    done
  done
done

# The kernel's floor for each load: one write per message per player, at
# the stream's rate (low: 68 messages/s, 255 kbit/s; big: 72/s, 4.4 Mbit/s),
# all sockets written back to back at each message, readers in a second
# process, as a server with no added latency must.
declare -A FLOOR
if have_floor; then
  for load in $loads; do
    n=${load##*:}
    if [ "${load%%:*}" = big ]; then f=$(floor_cpu "$n" 4400000 72 "$secs")
    else f=$(floor_cpu "$n" 255000 68 "$secs"); fi
    FLOOR[$load]=${f%% *}
  done
else
  echo "SKIPPED: the kernel floor rows (needs gcc and ../shared/tools/fanout-floor.c)" >&2
fi

# The most players each server keeps in real time with no added latency.
declare -A MOST
if [ -n "$ladder" ]; then
  for c in $configs; do
    [ "${c##*:}" = 0 ] || continue
    for n in $ladder; do
      measure "$c" "$n" "$low"
      echo "ladder $c $n: playing $(val playing "$out")/$n, behind $(val behind "$out"), p99 $(val lat_p99_ms "$out") ms" >&2
      # Real time: every player plays, none misses frames, and the p99
      # latency stays under a second (a server that stops reading its
      # publisher delays everyone alike without anyone missing frames).
      if [ "$(val behind "$out")" != 0 ] || [ "$(val playing "$out")" != "$n" ] ||
        awk -v l="$(val lat_p99_ms "$out")" 'BEGIN { exit !(l == "" || l + 0 > 1000) }'; then
        break
      fi
      MOST[$c]=$n
    done
  done
fi

mean() { awk '{s=0; for (i=1;i<=NF;i++) s+=$i; if (NF) printf "%.2f", s/NF; else printf "?"}' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "?" || b == "?" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
m() { mean "${M[$1,$2,$3]:-}"; }
echo
echo "each server at each latency: $(date -u +%Y-%m-%d), $(nproc) cores, ${secs} s per run, $rounds round(s)"
for load in $loads; do
  n=${load##*:}
  echo
  echo "$load (${load%%:*} stream, $n players)"
  echo
  echo "| server, latency setting | CPU % of a core | user % | kernel % | user / kernel | µs CPU per delivered message | RSS KiB per player | latency p99 ms | behind |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for c in $configs; do
    echo "| ${c%%:*}, ${c##*:} ms | $(m "$load" "$c" server_cpu_pct) | $(m "$load" "$c" server_user_pct) | $(m "$load" "$c" server_sys_pct) | $(ratio "$(m "$load" "$c" server_user_pct)" "$(m "$load" "$c" server_sys_pct)") | $(m "$load" "$c" server_us_per_msg) | $(awk -v r="$(m "$load" "$c" server_rss_kib)" -v n="$n" 'BEGIN{printf "%.1f", r/n}') | $(m "$load" "$c" lat_p99_ms) | $(m "$load" "$c" behind) |"
  done
  if [ -n "${FLOOR[$load]:-}" ]; then
    echo "| kernel floor (C, one write per message per player, no added latency) | ${FLOOR[$load]} | | | | | | | |"
  fi
  echo
  k=$(m "$load" rtmpkit:0 server_cpu_pct)
  best=$(awk -v a="$(m "$load" nginx:0 server_cpu_pct)" -v b="$(m "$load" srs:0 server_cpu_pct)" \
    'BEGIN { if (b == "?" || a + 0 <= b + 0) print a; else print b }')
  echo "- 0 ms: rtmpkit / the better of nginx-rtmp and SRS = $(ratio "$k" "$best") (goal <= 0.7)"
  if [ -n "${FLOOR[$load]:-}" ]; then
    echo "- 0 ms, each / the kernel floor: rtmpkit $(ratio "$k" "${FLOOR[$load]}"), nginx-rtmp $(ratio "$(m "$load" nginx:0 server_cpu_pct)" "${FLOOR[$load]}"), SRS $(ratio "$(m "$load" srs:0 server_cpu_pct)" "${FLOOR[$load]}")"
  fi
  echo "- 100 ms: rtmpkit / SRS = $(ratio "$(m "$load" rtmpkit:100 server_cpu_pct)" "$(m "$load" srs:100 server_cpu_pct)") (goal <= 0.5)"
  echo "- 350 ms: rtmpkit / SRS = $(ratio "$(m "$load" rtmpkit:350 server_cpu_pct)" "$(m "$load" srs:350 server_cpu_pct)") (goal <= 0.5)"
  echo "- RSS per player: rtmpkit / nginx-rtmp (0 ms) = $(ratio "$(m "$load" rtmpkit:0 server_rss_kib)" "$(m "$load" nginx:0 server_rss_kib)") (goal <= 1)"
done
if [ -n "$ladder" ]; then
  echo
  echo "Most players of the low stream kept in real time with no added latency (of ${ladder// //}):"
  echo
  echo "| server | players |"
  echo "|---|---|"
  for c in $configs; do
    [ "${c##*:}" = 0 ] || continue
    echo "| ${c%%:*} | ${MOST[$c]:-fewer than ${ladder%% *}} |"
  done
fi
