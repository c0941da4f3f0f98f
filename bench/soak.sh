#!/usr/bin/env bash
# Soak: `rtmpkit serve` on 127.0.0.1 under `rtmpkit bench soak` for MINUTES
# (default 30): one stream published all along with steady players that
# count lost frames, players joining and leaving all the time, publishers
# coming and going. Prints the server's RSS and open fds each minute, then a
# RESULT line. Stops the server it started by pid.
#
#   bench/soak.sh [MINUTES]            (CHURN=200 STEADY=20 PUBLISHERS=4)
set -euo pipefail
minutes=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q -p rtmpkit-cli --manifest-path "$root/Cargo.toml"
bin="$root/target/release/rtmpkit"
input="$root/tests/fixtures/sample-5s.flv"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
"$bin" serve --listen "127.0.0.1:$port" >"$log" 2>&1 &
spid=$!
trap 'kill $spid 2>/dev/null; wait $spid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 50); do
  grep -q listening "$log" && break
  sleep 0.1
done
echo "== rtmpkit serve (pid $spid) on 127.0.0.1:$port, soak for $minutes min"
"$bin" bench soak "rtmp://127.0.0.1:$port/live" --input "$input" --minutes "$minutes" \
  --steady "${STEADY:-20}" --churn "${CHURN:-200}" --publishers "${PUBLISHERS:-4}" --server-pid "$spid"
