#!/usr/bin/env bash
# The relay-push path under load: server A (`rtmpkit serve --relay-push`)
# takes N published streams, each with one local player, and pushes every
# one to server B. Prints A's CPU and memory (the relay pushes run there)
# and how many streams B received.
#
#   bench/relay.sh [SECONDS] [STREAMS]     (default 15 s, 100 streams)
#   BIN=/path/to/rtmpkit bench/relay.sh    (another build, e.g. to compare)
#
# Needs: cargo, curl, ffmpeg (to make the input when it is not in
# ../shared/media). Listens on 127.0.0.1 only; every process started here is
# stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
n=${2:-100}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p rtmpkit-cli
  BIN=$PWD/target/release/rtmpkit
fi
. bench/lib.sh

input=../shared/media/h264-baseline-360p25-500k-10s.flv
if [ ! -f "$input" ]; then
  input=$work/360p-600k.flv
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=25" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:beep_factor=4" -t 10 \
    -c:v libx264 -profile:v baseline -preset veryfast -b:v 500k -maxrate 500k -bufsize 1000k \
    -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 64k -ac 2 -f flv "$input"
fi

port_a=$((20000 + RANDOM % 20000))
port_b=$((port_a + 1))
http_b=$((port_a + 2))
"$BIN" -q serve --listen "127.0.0.1:$port_b" --http-listen "127.0.0.1:$http_b" &
pids+=($!)
"$BIN" -q serve --listen "127.0.0.1:$port_a" --relay-push "rtmp://127.0.0.1:$port_b" &
pid_a=$!
pids+=("$pid_a")
wait_port "$port_b"
wait_port "$port_a"
# B's published streams, sampled each second while the load runs (the most seen).
(
  most=0
  while sleep 1; do
    c=$(curl -sf "http://127.0.0.1:$http_b/stats" | grep -o '"publishing":true' | wc -l || true)
    [ "${c:-0}" -gt "$most" ] && most=$c && echo "$most" >"$work/streams_b"
  done
) &
pids+=($!)
out=$("$BIN" bench ingest "rtmp://127.0.0.1:$port_a/live/in{i}" -n "$n" --duration "$secs" \
  --input "$input" --server-pid "$pid_a" 2>&1 | grep '^RESULT' || true)
streams_b=$(cat "$work/streams_b" 2>/dev/null || echo 0)
echo "relay push, $n streams, $secs s: $out"
echo "streams B received (most at once): $streams_b"
