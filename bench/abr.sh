#!/usr/bin/env bash
# What serving a quality ladder costs: FFmpeg 9 publishes a three-rung
# H.264 ladder (640x360 800k, 426x240 400k, 256x144 150k, AAC 64k) as one
# E-RTMP multitrack stream to `rtmpkit serve`, and N LL-HLS viewers
# (`rtmpkit bench hls`, spread over the three variants) read it; then the
# same with only the top rung published, N viewers of that one rendition.
# Alternating rounds, on 127.0.0.1 only; prints the server's CPU of each
# and their ratio.
#
#   bench/abr.sh [VIEWERS] [SECONDS] [ROUNDS]      (default 100 20 2)
#   FFMPEG9=/path/to/ffmpeg (default $RTMPKIT_FFMPEG9, or the imageio-ffmpeg
#                            of ~/.cache/rtmpkit-ffmpeg9, as .ci/run installs)
#   BIN=/path/to/rtmpkit    (default: a release build of this checkout)
#
# Every process started here is stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
viewers=${1:-100}
secs=${2:-20}
rounds=${3:-2}
ff9=${FFMPEG9:-${RTMPKIT_FFMPEG9:-}}
if [ -z "$ff9" ] && [ -x "$HOME/.cache/rtmpkit-ffmpeg9/bin/python" ]; then
  ff9=$("$HOME/.cache/rtmpkit-ffmpeg9/bin/python" -c "import imageio_ffmpeg as f; print(f.get_ffmpeg_exe())")
fi
if [ -z "$ff9" ]; then
  echo "needs FFmpeg 9 (set FFMPEG9): Debian's ffmpeg cannot mux several video tracks" >&2
  exit 1
fi
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p rtmpkit-cli
  BIN=$PWD/target/release/rtmpkit
fi
. bench/lib.sh

ladder=$work/ladder.flv
echo "encoding 20 s of the ladder with FFmpeg 9..." >&2
"$ff9" -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=25" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 20 \
  -filter_complex "[0:v]split=3[v0][s1][s2];[s1]scale=426:240[v1];[s2]scale=256:144[v2]" \
  -map "[v0]" -map "[v1]" -map "[v2]" -map 1:a \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 \
  -b:v:0 800k -maxrate:v:0 800k -bufsize:v:0 1600k \
  -b:v:1 400k -maxrate:v:1 400k -bufsize:v:1 800k \
  -b:v:2 150k -maxrate:v:2 150k -bufsize:v:2 300k \
  -c:a aac -b:a 64k -f flv "$ladder"

declare -A CPU MBPS
for r in $(seq "$rounds"); do
  for mode in ladder single; do
    port=$((20000 + RANDOM % 12000))
    web=$((port + 1))
    "$BIN" -q serve --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$web" >/dev/null &
    srv=$!
    pids+=("$srv")
    wait_port "$port"
    maps=(-map 0)
    [ "$mode" = single ] && maps=(-map 0:v:0 -map 0:a)
    "$ff9" -hide_banner -loglevel quiet -re -stream_loop -1 -i "$ladder" "${maps[@]}" \
      -c copy -f flv "rtmp://127.0.0.1:$port/live/s" &
    pub=$!
    pids+=("$pub")
    sleep 3
    out=$("$BIN" bench hls "http://127.0.0.1:$web/live/s/index.m3u8" -n "$viewers" \
      --duration "$secs" --server-pid "$srv" 2>/dev/null | grep '^RESULT' || true)
    echo "round $r $mode: $out" >&2
    CPU[$mode]="${CPU[$mode]:-} $(val server_cpu_pct "$out")"
    MBPS[$mode]="${MBPS[$mode]:-} $(val mbps "$out")"
    kill "$pub" "$srv" 2>/dev/null || true
    wait "$pub" "$srv" 2>/dev/null || true
    sleep 1
  done
done

mean() { awk '{s=0; for (i=1;i<=NF;i++) s+=$i; if (NF) printf "%.1f", s/NF; else printf "?"}' <<<"$1"; }
echo
echo "LL-HLS, $viewers viewers, $(date -u +%Y-%m-%d), $(nproc) cores, ${secs} s per run, $rounds round(s)"
echo
echo "| stream | variants | delivered Mbit/s | server CPU % of a core |"
echo "|---|---|---|---|"
echo "| the ladder (3 video tracks, viewers spread over them) | 3 | $(mean "${MBPS[ladder]}") | $(mean "${CPU[ladder]}") |"
echo "| its top rung alone (one video track) | 1 | $(mean "${MBPS[single]}") | $(mean "${CPU[single]}") |"
echo
echo "- server CPU, ladder / one rendition = $(awk -v a="$(mean "${CPU[ladder]}")" -v b="$(mean "${CPU[single]}")" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }')"
