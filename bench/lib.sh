# What the bench scripts share; sourced, not run. It gives:
# - $work, a temporary directory removed on exit;
# - pids, the processes started (each is killed by pid on exit);
# - wait_port PORT: waits for 127.0.0.1:PORT to accept (10 s), or fails;
# - val KEY LINE: the value of KEY=... in a RESULT line;
# - low_stream FILE: writes the "low" stream of the SRS comparisons, 10 s
#   of 320x180 H.264 200k + AAC 32k (255 kbit/s), as FLV.
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2
  return 1
}

val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

low_stream() {
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=320x180:rate=25" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:beep_factor=4" -t 10 \
    -c:v libx264 -profile:v baseline -preset veryfast -b:v 200k -maxrate 200k -bufsize 400k \
    -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 32k -ac 2 -f flv "$1"
}
