# What the bench scripts share; sourced, not run. It gives:
# - $work, a temporary directory removed on exit;
# - pids, the processes started (each is killed by pid on exit);
# - wait_port PORT: waits for 127.0.0.1:PORT to accept (10 s), or fails;
# - val KEY LINE: the value of KEY=... in a RESULT line;
# - low_stream FILE: writes the "low" stream of the SRS comparisons, 10 s
#   of 320x180 H.264 200k + AAC 32k (255 kbit/s), as FLV;
# - big_stream: prints the path of the "big" stream, the 4.4 Mbit/s 720p
#   sample of ../shared/media, made in $work with ffmpeg when it is not there;
# - start_nginx [PORT]: nginx-rtmp (Debian's libnginx-mod-rtmp, one worker,
#   no batching) on 127.0.0.1:PORT (default $port); with tls=1, behind
#   nginx's stream {} TLS ($work/srv.pem and srv.key); NGINX_RECORD sets its
#   record line. Prints its pid;
# - start_srs PORT DELAY: SRS ($srs) on 127.0.0.1:PORT, its writes merged
#   for DELAY ms (as many connections as the open-files limit allows):
#   350 is its defaults, 0 is batching off (tcp_nodelay on;
#   min_latency on; mw_latency 0), others `mw_latency DELAY`. Prints its pid;
# - have_floor: builds ../shared/tools/fanout-floor.c (the kernel's floor
#   for writing N loopback sockets) into $work/floor with gcc; fails
#   without either;
# - floor_cpu N BITS_PER_S WRITES_PER_S SECS: runs it (one write of
#   BITS_PER_S / 8 / WRITES_PER_S bytes per socket WRITES_PER_S times a
#   second, readers in a second process) and prints "CPU PER_GBIT": the
#   sender's CPU % of a core and % per delivered Gbit/s; its line goes to
#   stderr.
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

big_stream() {
  local f=../shared/media/h264-main-720p25-4M-10s.flv
  if [ ! -f "$f" ]; then
    f=$work/720p-4M.flv
    echo "making a 720p 4 Mbit/s input with ffmpeg..." >&2
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=25" \
      -f lavfi -i "sine=frequency=1000:sample_rate=48000:beep_factor=4" -t 10 \
      -c:v libx264 -profile:v main -preset veryfast -b:v 4000k -maxrate 4000k -bufsize 8000k \
      -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 128k -ac 2 -f flv "$f"
  fi
  echo "$f"
}

start_nginx() {
  local port=${1:-$port}
  mkdir -p "$work/nginx/logs"
  local rtmp_port=$port front=""
  if [ "${tls:-0}" = 1 ]; then
    rtmp_port=$((port + 1))
    front="load_module /usr/lib/nginx/modules/ngx_stream_module.so;
stream { server { listen 127.0.0.1:$port ssl; ssl_certificate $work/srv.pem;
  ssl_certificate_key $work/srv.key; proxy_pass 127.0.0.1:$rtmp_port; } }"
  fi
  cat >"$work/nginx/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; }
rtmp {
  server {
    listen 127.0.0.1:$rtmp_port;
    chunk_size 4096;
    application live { live on; ${NGINX_RECORD:-record off;} }
  }
}
CONF
  # load_module must come first: put the stream front's lines in place.
  if [ -n "$front" ]; then
    { head -1 "$work/nginx/nginx.conf"; sed -n 1p <<<"$front";
      tail -n +2 "$work/nginx/nginx.conf"; tail -n +2 <<<"$front"; } >"$work/nginx/nginx.conf.new"
    mv "$work/nginx/nginx.conf.new" "$work/nginx/nginx.conf"
  fi
  nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" >"$work/nginx/stdout.log" 2>&1 &
  echo $!
}

start_srs() {
  local port=$1 delay=$2 vhost=""
  case $delay in
    350) ;;
    0) vhost="tcp_nodelay on; min_latency on; play { mw_latency 0; }" ;;
    *) vhost="play { mw_latency $delay; }" ;;
  esac
  mkdir -p "$work/srs-$port"
  cat >"$work/srs-$port/srs.conf" <<CONF
listen              127.0.0.1:$port;
max_connections     $(( $(ulimit -n) - 500 ));
daemon              off;
pid                 $work/srs-$port/srs.pid;
srs_log_tank        file;
srs_log_file        $work/srs-$port/srs.log;
vhost __defaultVhost__ {
    $vhost
}
CONF
  (cd "$work/srs-$port" && exec "$srs" -c srs.conf >/dev/null 2>&1) &
  echo $!
}

have_floor() {
  [ -x "$work/floor" ] && return 0
  local src=../shared/tools/fanout-floor.c
  [ -f "$src" ] && command -v gcc >/dev/null && gcc -O2 -o "$work/floor" "$src" 2>/dev/null
}

floor_cpu() {
  local out
  out=$("$work/floor" "$1" "$2" "$3" 0 "$4" || true)
  echo "floor: $out" >&2
  sed -n 's/.*sender cpu \([0-9.]*\)% -> \([0-9.]*\) %\/Gbit.*/\1 \2/p' <<<"$out"
}
