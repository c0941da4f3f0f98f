#!/usr/bin/env bash
# A publisher on an uplink slower than its stream: `rtmpkit push` in one
# network namespace sends a 2.5 Mbit/s stream to `rtmpkit serve` in another
# over a veth pair limited to RATE (1 Mbit/s) by tc (tbf) in the upload
# direction; a player on the server's side records what arrives.
#
#   sudo bench/throttle.sh        (RATE=1mbit SECS=12 DROP_MS=700 BOUND_MS=2000)
#
# Two runs of the same file:
# - `--drop-after-ms DROP_MS`: the push never waits. It prints the media
#   time queued each second; that must stay under BOUND_MS: the purge
#   threshold (DROP_MS + 200) plus the time one keyframe takes on the link
#   (this stream's are 58-105 KB: 0.5-0.8 s at 1 Mbit/s). Non-key video
#   frames are dropped, every keyframe and audio frame arrives, and the
#   recording decodes without errors.
# - no drop policy: every frame arrives, and the push waits for the link
#   (it takes far longer than the media lasts).
# - the encoder example (OpenH264 at 800 kbit/s, examples/encode_push.rs)
#   over ENC_RATE (600 kbit/s): it halves its bitrate when the congestion
#   watch leaves Clear (back up after 4 s of Clear), and what arrives decodes.
#
# Needs root, iproute2 (ip, tc with tbf) and ffmpeg. The namespaces, the
# veth pair and their addresses (10.78.0.0/24) exist only inside namespaces
# this script makes, and are removed at the end; every process it starts is
# stopped by pid. Where namespaces cannot be made, it says why and exits 0
# (SKIPPED), or 1 with REQUIRE_NETNS=1.
set -uo pipefail
source "$(dirname "$0")/netns.sh"
rate=${RATE:-1mbit}
secs=${SECS:-12}
drop_ms=${DROP_MS:-700}
bound_ms=${BOUND_MS:-2000}
failed=0

fail() {
  echo "FAIL: $1"
  failed=1
}

command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || skip "needs ffmpeg and ffprobe"
netns_pair rt 10.78.0

# The stream: 720p25 with noise (so that x264 spends its whole rate),
# 2.4 Mbit/s video with a keyframe every 2 s, 96 kbit/s AAC.
input="$work/in.flv"
ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=1280x720:rate=25,noise=alls=12:allf=t" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$secs" \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p -b:v 2400k -maxrate 2400k -bufsize 2400k \
  -g 50 -keyint_min 50 -sc_threshold 0 -c:a aac -b:a 96k -f flv "$input" || exit 1
kbps=$(($(stat -c %s "$input") * 8 / secs / 1000))

# The upload: a token bucket at RATE, with 100 ms of queue.
ip netns exec "$pub" tc qdisc add dev "$pub_dev" root tbf rate "$rate" burst 32kbit latency 100ms ||
  skip "no tbf qdisc"
echo "== stream: ${secs} s, ${kbps} kbit/s (x264 2400k, keyframe every 2 s, AAC 96k); uplink: tbf ${rate}, 100 ms of queue"

ip netns exec "$srv" "$bin" serve --listen 0.0.0.0:1935 >"$work/serve.log" 2>&1 &
pids+=($!)
sleep 0.5

# frames FILE: "video audio keyframes" packet counts.
frames() {
  ffprobe -v error -show_entries packet=codec_type,flags -of csv=p=0 "$1" |
    awk -F, '$1=="video"{v++; if ($2 ~ /K/) k++} $1=="audio"{a++} END{printf "%d %d %d", v, a, k}'
}
read -r in_v in_a in_k <<<"$(frames "$input")"
echo "input: $in_v video frames ($in_k keyframes), $in_a audio frames"

# run NAME PUSH_ARGS...: a player records the stream while the push runs;
# prints the push's wall time in ms.
run() {
  local name=$1
  shift
  ip netns exec "$srv" "$bin" -q pull "rtmp://127.0.0.1/live/$name" -o "$work/$name.flv" --duration 300 &
  local player=$!
  pids+=("$player")
  sleep 0.5
  local t0
  t0=$(date +%s%3N)
  ip netns exec "$pub" "$bin" push "$input" "rtmp://10.78.0.1/live/$name" "$@" --stats-every 1 2>"$work/$name.push.log"
  local rc=$?
  echo $(($(date +%s%3N) - t0)) >"$work/$name.wall"
  [ $rc = 0 ] || fail "$name: push exited $rc: $(tail -3 "$work/$name.push.log")"
  for _ in $(seq 1 150); do kill -0 "$player" 2>/dev/null || break; sleep 0.2; done
  kill "$player" 2>/dev/null
  wait "$player" 2>/dev/null
}

echo "== with --drop-after-ms $drop_ms"
run on --drop-after-ms "$drop_ms"
echo "queued ms, each second: $(sed -n 's/.*queued_ms=\([0-9]*\).*/\1/p' "$work/on.push.log" | tr '\n' ' ')"
echo "send kbit/s, each second: $(sed -n 's/.*send_kbps=\([0-9]*\).*/\1/p' "$work/on.push.log" | tr '\n' ' ')"
grep '^push: sent' "$work/on.push.log"
max_q=$(sed -n 's/.*at most \([0-9]*\) ms queued.*/\1/p' "$work/on.push.log")
dropped=$(sed -n 's/.*dropped \([0-9]*\) non-key frames as they came and \([0-9]*\) queued.*/\1 \2/p' "$work/on.push.log")
read -r on_v on_a on_k <<<"$(frames "$work/on.flv")"
echo "recorded: $on_v video frames ($on_k keyframes), $on_a audio frames; the push took $(cat "$work/on.wall") ms; most queued ${max_q:-?} ms; dropped (as they came, queued): ${dropped:-?}"
[ -n "$max_q" ] && [ "$max_q" -le "$bound_ms" ] || fail "on: the queue reached ${max_q:-?} ms (bound $bound_ms)"
[ "$on_k" = "$in_k" ] || fail "on: $on_k of $in_k keyframes arrived"
[ "$on_a" = "$in_a" ] || fail "on: $on_a of $in_a audio frames arrived"
[ "$on_v" -lt "$in_v" ] || fail "on: nothing was dropped"
errors=$(ffmpeg -v error -i "$work/on.flv" -f null - 2>&1 | head -5)
[ -z "$errors" ] || fail "on: the recording does not decode cleanly: $errors"
[ "$(cat "$work/on.wall")" -lt $((secs * 1000 + 3000)) ] || fail "on: the push waited for the link"

echo "== without a drop policy"
run off
grep '^push: sent' "$work/off.push.log"
read -r off_v off_a off_k <<<"$(frames "$work/off.flv")"
echo "recorded: $off_v video frames ($off_k keyframes), $off_a audio frames; the push took $(cat "$work/off.wall") ms for ${secs} s of media"
[ "$off_v" = "$in_v" ] && [ "$off_a" = "$in_a" ] || fail "off: frames were lost"
[ "$(cat "$work/off.wall")" -gt $((secs * 1500)) ] || fail "off: the push did not wait for the link"
errors=$(ffmpeg -v error -i "$work/off.flv" -f null - 2>&1 | head -5)
[ -z "$errors" ] || fail "off: the recording does not decode cleanly: $errors"

enc_rate=${ENC_RATE:-600kbit}
echo "== the encoder example (OpenH264 at 800 kbit/s) with --drop-after-ms $drop_ms, uplink tbf ${enc_rate}: it halves its bitrate when the congestion watch leaves Clear"
cargo build --release -q -p rtmpkit --example encode_push --manifest-path "$root/Cargo.toml" || exit 1
ip netns exec "$pub" tc qdisc change dev "$pub_dev" root tbf rate "$enc_rate" burst 32kbit latency 100ms || fail "tbf change"
ip netns exec "$srv" "$bin" -q pull rtmp://127.0.0.1/live/enc -o "$work/enc.flv" --duration 300 &
player=$!
pids+=("$player")
sleep 0.5
ip netns exec "$pub" "$root/target/release/examples/encode_push" rtmp://10.78.0.1/live/enc "$secs" \
  --drop-after-ms "$drop_ms" >"$work/enc.log" 2>/dev/null || fail "encode_push exited $?"
for _ in $(seq 1 150); do kill -0 "$player" 2>/dev/null || break; sleep 0.2; done
grep -E '^(at|done)' "$work/enc.log"
read -r enc_v _ enc_k <<<"$(frames "$work/enc.flv")"
echo "recorded: $enc_v video frames ($enc_k keyframes)"
grep -q 'bitrate 400000' "$work/enc.log" || fail "encode: the bitrate was never lowered"
errors=$(ffmpeg -v error -i "$work/enc.flv" -f null - 2>&1 | head -5)
[ -z "$errors" ] || fail "encode: the recording does not decode cleanly: $errors"

[ $failed = 0 ] && echo "throttle: OK"
exit $failed
