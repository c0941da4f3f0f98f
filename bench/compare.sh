#!/usr/bin/env bash
# Side-by-side load test: rtmpkit serve vs nginx-rtmp (Debian libnginx-mod-rtmp)
# and SRS (from SRS_BIN or ../shared/peers/srs/srs, left out with a note
# without one; run with `mw_latency 100`, the same latency setting as
# rtmpkit's default), one after the other, on 127.0.0.1 only, under the same
# publisher and the same `rtmpkit bench` load. Prints one markdown table with
# every server and rtmpkit's ratio to each other one.
#
#   bench/compare.sh [PLAY_SECONDS]        (default 15; whole run about 16 minutes)
#   SERVERS="rtmpkit" STEPS="100 500" bench/compare.sh 5   (a quicker look;
#                                the default is "rtmpkit nginx srs", srs only
#                                when its binary is there and not with TLS=1)
#   SERVE_ARGS="--max-write-delay-ms 40" bench/compare.sh   (extra flags for rtmpkit serve)
#   DELAYS="0 40 100" DELAY_PLAYERS=500 bench/compare.sh   (the max_write_delay_ms
#                                sweep: rtmpkit once per value at DELAY_PLAYERS
#                                players, CPU and p99 latency; DELAYS="" skips it)
#   STORM_RATE=400 bench/compare.sh   (the paced connect storm's sessions/s)
#   HTTP_PLAYERS="500 1000" bench/compare.sh   (rtmpkit's HTTP-FLV fan-out against
#                                its RTMP fan-out, same players, same run;
#                                HTTP_PLAYERS="" skips it)
#   INGEST="100 500" bench/compare.sh   (the ingest shape: N streams, one
#                                publisher and one player each, on both servers;
#                                INGEST="" skips it)
#   RECORD="100" bench/compare.sh   (the recording step: N streams of the ingest
#                                shape, recorded by every server at once, against
#                                the same with recording off: rtmpkit fMP4 and
#                                FLV, nginx-rtmp's `record all` (FLV); RECORD=""
#                                skips it)
#   LATENCY=0 bench/compare.sh  (skips the last section: bench/latency.sh,
#                                SRS, nginx-rtmp and rtmpkit at 350, 100 and
#                                0 ms on the low and big streams; SRS from
#                                SRS_BIN or ../shared/peers/srs/srs, left out
#                                with a note without one)
#   TLS=1 bench/compare.sh      (everything over rtmps://: rtmpkit's own TLS
#                                listener vs nginx-rtmp behind nginx's stream {}
#                                TLS, with a CA made here by openssl)
#
# Needs: cargo, ffmpeg (to make the 4.4 Mbit/s input when it is not in
# ../shared/media), nginx + libnginx-mod-rtmp (+ libnginx-mod-stream and
# openssl for TLS=1); gcc and ../shared/tools/fanout-floor.c for the
# kernel-floor row (left out without them). Every process started here is
# stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
play_secs=${1:-15}
steps=${STEPS:-"100 500 1000 1500 2000 3000"}
delays=${DELAYS-"0 20 50 100 200"}
storm_rate=${STORM_RATE:-400}
delay_players=${DELAY_PLAYERS:-500}
http_players=${HTTP_PLAYERS-"500 1000"}
ingest_steps=${INGEST-"100 500"}
record_steps=${RECORD-"100"}
srs=${SRS_BIN:-../shared/peers/srs/srs}
tls=${TLS:-0}
if [ -z "${SERVERS:-}" ]; then
  SERVERS="rtmpkit nginx"
  if [ -x "$srs" ] && [ "$tls" != 1 ]; then
    SERVERS+=" srs"
  elif [ "$tls" != 1 ]; then
    echo "SKIPPED: SRS (no binary at $srs; set SRS_BIN, see the README for how to build it)" >&2
  fi
fi
servers=$SERVERS
[ -x "$srs" ] && srs=$(realpath "$srs")
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release -q -p rtmpkit-cli
bin=$PWD/target/release/rtmpkit
. bench/lib.sh

input=$(big_stream)

port=$((20000 + RANDOM % 20000))
base=rtmp://127.0.0.1:$port
tls_flags=()
if [ "$tls" = 1 ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 \
    -subj "/CN=rtmpkit bench CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$work/srv.key" -out "$work/srv.csr" \
    -subj "/CN=localhost" 2>/dev/null
  printf "subjectAltName=DNS:localhost\n" >"$work/ext"
  openssl x509 -req -in "$work/srv.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -out "$work/srv.pem" -days 2 -extfile "$work/ext" 2>/dev/null
  base=rtmps://localhost:$port
  tls_flags=(--tls-ca "$work/ca.pem")
fi

start_rtmpkit() {
  if [ "$tls" = 1 ]; then
    "$bin" -q serve --listen none --tls-listen 127.0.0.1:$port \
      --tls-cert "$work/srv.pem" --tls-key "$work/srv.key" >"$work/rtmpkit.log" 2>&1 &
  else
    "$bin" -q serve --listen 127.0.0.1:$port ${SERVE_ARGS:-} "$@" >"$work/rtmpkit.log" 2>&1 &
  fi
  echo $!
}

# start_server NAME [rtmpkit serve flags]: starts rtmpkit, nginx or srs on
# $port; prints its pid.
start_server() {
  case $1 in
    srs) start_srs "$port" 100 ;;
    nginx) start_nginx ;;
    *) shift; start_rtmpkit "$@" ;;
  esac
}

declare -A R
run_server() {
  local name=$1 pid
  R[$name,ok]=0
  pid=$(start_server "$name")
  pids+=("$pid")
  wait_port "$port"
  echo "== $name (pid $pid)" >&2
  local out
  out=$("$bin" bench connect "$base/live/storm" "${tls_flags[@]}" -n 20 --duration 5 --server-pid "$pid" | tail -1)
  echo "$out" >&2
  R[$name,connect_cpu]=$(val server_cpu_ms_per_session "$out")
  R[$name,connect_rate]=$(val per_sec "$out")
  # The same storm paced to one rate for both servers: CPU per session at
  # equal work per second (nginx-rtmp's replies wait for delayed ACKs, so
  # unpaced it runs at a far lower rate than rtmpkit).
  out=$("$bin" bench connect "$base/live/storm" "${tls_flags[@]}" -n 20 --duration 5 --rate "$storm_rate" --server-pid "$pid" | tail -1)
  echo "$out" >&2
  R[$name,paced_cpu]=$(val server_cpu_ms_per_session "$out")
  # One player at a time joining a live stream: connect -> first video frame.
  "$bin" -q push --loop "$input" "$base/live/ff" "${tls_flags[@]}" &
  local pusher=$!
  pids+=("$pusher")
  sleep 2
  out=$("$bin" bench connect "$base/live/ff" "${tls_flags[@]}" -n 1 --duration 8 --first-frame | tail -1)
  echo "$out" >&2
  R[$name,ff50]=$(val first_frame_p50_ms "$out")
  R[$name,ff95]=$(val first_frame_p95_ms "$out")
  R[$name,ff]="$(val first_frame_p50_ms "$out") / ${R[$name,ff95]}"
  kill "$pusher" 2>/dev/null || true
  wait "$pusher" 2>/dev/null || true
  for n in $steps; do
    out=$("$bin" bench play "$base/live/s$n" "${tls_flags[@]}" -n "$n" --duration "$play_secs" \
      --input "$input" --server-pid "$pid" 2>&1 | tee -a "$work/$name.play.log" | grep '^RESULT' || true)
    echo "$out" >&2
    R[$name,$n,mbps]=$(val mbps "$out")
    R[$name,$n,behind]=$(val behind "$out")
    R[$name,$n,playing]=$(val playing "$out")
    R[$name,$n,cpu_gbit]=$(val server_cpu_pct_per_gbit "$out")
    R[$name,$n,cpu]=$(val server_cpu_pct "$out")
    R[$name,$n,rss]=$(val server_rss_kib "$out")
    R[$name,$n,rss_pp]=$(awk -v r="${R[$name,$n,rss]:-}" -v n="$n" 'BEGIN { if (r != "") printf "%.1f", r / n }')
    R[$name,$n,lat99]=$(val lat_p99_ms "$out")
    R[$name,$n,ff95]=$(val first_frame_p95_ms "$out")
    R[$name,$n,tool]=$(val tool_cpu_pct "$out")
    # Stop growing N once this server falls behind or cannot take the players.
    if [ "${R[$name,$n,behind]:-1}" != 0 ] || [ "${R[$name,$n,playing]:-0}" != "$n" ]; then
      R[$name,max]=$n
      break
    fi
    R[$name,ok]=$n
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  sleep 1
}

for s in $servers; do run_server "$s"; done

# The latency / CPU trade of fan-out coalescing: rtmpkit at each
# max_write_delay_ms, same players, same input.
declare -A D
if [[ " $servers " == *" rtmpkit "* ]] && [ "$tls" != 1 ]; then
  for d in $delays; do
    pid=$(start_rtmpkit --max-write-delay-ms "$d")
    pids+=("$pid")
    wait_port "$port"
    out=$("$bin" bench play "$base/live/d$d" -n "$delay_players" --duration "$play_secs" \
      --input "$input" --server-pid "$pid" 2>&1 | grep '^RESULT' || true)
    echo "delay $d: $out" >&2
    D[$d,cpu_gbit]=$(val server_cpu_pct_per_gbit "$out")
    D[$d,lat99]=$(val lat_p99_ms "$out")
    D[$d,behind]=$(val behind "$out")
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    sleep 1
  done
fi

# HTTP-FLV fan-out against RTMP fan-out: rtmpkit with the same players
# and input, over each protocol in turn.
declare -A H
if [[ " $servers " == *" rtmpkit "* ]] && [ "$tls" != 1 ]; then
  for n in $http_players; do
    hport=$((port + 1))
    pid=$(start_rtmpkit --http-listen 127.0.0.1:$hport)
    pids+=("$pid")
    wait_port "$port"
    for proto in rtmp http; do
      extra=()
      [ "$proto" = http ] && extra=(--http-flv 127.0.0.1:$hport)
      out=$("$bin" bench play "$base/live/h$proto$n" "${extra[@]}" -n "$n" --duration "$play_secs" \
        --input "$input" --server-pid "$pid" 2>&1 | grep '^RESULT' || true)
      echo "$proto $n: $out" >&2
      H[$proto,$n,cpu_gbit]=$(val server_cpu_pct_per_gbit "$out")
      H[$proto,$n,lat99]=$(val lat_p99_ms "$out")
      H[$proto,$n,behind]=$(val behind "$out")
      H[$proto,$n,mbps]=$(val mbps "$out")
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    sleep 1
  done
fi

# The ingest shape: N streams, each with its own publisher (the ~600
# kbit/s sample, looped at real time) and one player, on each server.
declare -A I
ingest_input=../shared/media/h264-baseline-360p25-500k-10s.flv
if [ -n "$ingest_steps" ] && [ "$tls" != 1 ]; then
  if [ ! -f "$ingest_input" ]; then
    ingest_input=$work/360p-600k.flv
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=25" \
      -f lavfi -i "sine=frequency=440:sample_rate=44100:beep_factor=4" -t 10 \
      -c:v libx264 -profile:v baseline -preset veryfast -b:v 500k -maxrate 500k -bufsize 1000k \
      -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 64k -ac 2 -f flv "$ingest_input"
  fi
  for s in $servers; do
    for n in $ingest_steps; do
      pid=$(start_server "$s")
      pids+=("$pid")
      wait_port "$port"
      out=$("$bin" bench ingest "$base/live/in{i}" -n "$n" --duration "$play_secs" \
        --input "$ingest_input" --server-pid "$pid" 2>&1 | grep '^RESULT' || true)
      echo "ingest $s $n: $out" >&2
      for k in publishing playing behind msgs_per_s lat_p50_ms lat_p99_ms gop_kib server_cpu_pct us_per_msg rss_kib_per_stream tool_cpu_pct; do
        I[$s,$n,$k]=$(val "$k" "$out")
      done
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      sleep 1
    done
  done
fi

# The recording step: the ingest shape, each stream recorded (rtmpkit fMP4
# and FLV; nginx-rtmp's record all, FLV), against the same with recording
# off. Bytes written per second are over the whole run (ramp included).
declare -A REC
rec_modes=()
if [ -n "$record_steps" ] && [ "$tls" != 1 ]; then
  for s in $servers; do
    case $s in
      rtmpkit) rec_modes+=(rtmpkit:off rtmpkit:fmp4 rtmpkit:flv) ;;
      nginx) rec_modes+=(nginx:off nginx:flv) ;;
    esac
  done
  for n in $record_steps; do
    for m in "${rec_modes[@]}"; do
      s=${m%%:*} f=${m##*:}
      dir=$work/rec-$s-$f
      rm -rf "$dir"; mkdir -p "$dir"
      if [ "$s" = rtmpkit ]; then
        if [ "$f" = off ]; then pid=$(start_rtmpkit); else pid=$(start_rtmpkit --record "$dir" --record-format "$f"); fi
      else
        if [ "$f" = off ]; then pid=$(start_nginx); else pid=$(NGINX_RECORD="record all; record_path $dir; record_unique on;" start_nginx); fi
      fi
      pids+=("$pid")
      wait_port "$port"
      t0=$(date +%s.%N)
      out=$("$bin" bench ingest "$base/live/in{i}" -n "$n" --duration "$play_secs" \
        --input "$ingest_input" --server-pid "$pid" 2>&1 | grep '^RESULT' || true)
      t1=$(date +%s.%N)
      bytes=$(du -sb "$dir" | cut -f1)
      echo "record $m $n: $out bytes=$bytes" >&2
      for k in behind lat_p99_ms server_cpu_pct; do
        REC[$m,$n,$k]=$(val "$k" "$out")
      done
      REC[$m,$n,kbs]=$(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.0f", b / (z - a) / 1024 }')
      REC[$m,$n,files]=$(find "$dir" -type f | wc -l)
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      rm -rf "$dir"
      sleep 1
    done
  done
fi

# The kernel's floor, measured in the same run: a C program writing N
# loopback sockets one frame-sized write per video frame (25/s), paired with
# its own readers (../shared/tools/fanout-floor.c, when it is there).
declare -A FLOOR
if have_floor; then
  for n in $steps; do
    [ -n "${R[rtmpkit,$n,mbps]:-}${R[nginx,$n,mbps]:-}${R[srs,$n,mbps]:-}" ] || continue
    f=$(floor_cpu "$n" 4400000 25 "$play_secs")
    FLOOR[$n]=${f##* }
  done
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

label() { case $1 in nginx) echo nginx-rtmp ;; srs) echo "SRS (mw_latency 100)" ;; *) echo "$1" ;; esac; }
others=""
for s in $servers; do [ "$s" = rtmpkit ] || others+=" $s"; done
# row LABEL KEY [RATIO_KEY]: each server's R[server,KEY], then rtmpkit's
# R[rtmpkit,RATIO_KEY] (default KEY; "-" for none) over each other server's.
row() {
  local line="| $1 |" s rk=${3:-$2}
  for s in $servers; do line+=" ${R[$s,$2]:-} |"; done
  for s in $others; do
    if [ "$rk" = - ]; then line+=" |"; else line+=" $(ratio "${R[rtmpkit,$rk]:-}" "${R[$s,$rk]:-}") |"; fi
  done
  echo "$line"
}

echo
[ "$tls" = 1 ] && echo "over TLS: rtmpkit --tls-listen vs nginx-rtmp behind nginx stream {} TLS"
echo "rtmpkit vs nginx-rtmp $(nginx -v 2>&1 | sed 's/.*\///')$([[ " $servers " == *" srs "* ]] && echo " and SRS $("$srs" -v 2>&1 | tail -1)"), $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), ${play_secs}s per step, input $(basename "$input")"
echo
head="| figure |" rule="|---|"
for s in $servers; do head+=" $(label "$s") |"; rule+="---|"; done
for s in $others; do head+=" rtmpkit / $(label "$s" | cut -d' ' -f1) |"; rule+="---|"; done
echo "$head"
echo "$rule"
row "rtmpkit serve flags: ${SERVE_ARGS:-(defaults)}" -
row "connect storm: server CPU per session (ms)" connect_cpu
row "connect storm paced to $storm_rate sessions/s: server CPU per session (ms)" paced_cpu
row "connect storm: sessions/s (20 in flight)" connect_rate
row "one player joining a live stream: connect -> first video frame p50 / p95 (ms)" ff ff95
row "most players kept in real time (of ${steps// //})" ok
for n in $steps; do
  any=""
  for s in $servers; do any+=${R[$s,$n,mbps]:-}; done
  [ -n "$any" ] || continue
  row "$n players: delivered Mbit/s" "$n,mbps"
  row "$n players: players behind real time" "$n,behind" -
  row "$n players: server CPU % of a core per delivered Gbit/s" "$n,cpu_gbit"
  if [ -n "${FLOOR[$n]:-}" ]; then
    for s in $servers; do R[$s,$n,floor]=$(ratio "${R[$s,$n,cpu_gbit]:-}" "${FLOOR[$n]}"); done
    row "$n sockets: kernel floor, one write per frame (C), ${FLOOR[$n]} CPU % per Gbit/s; each server / floor" "$n,floor" -
  fi
  row "$n players: server RSS KiB per player" "$n,rss_pp"
  row "$n players: latency publisher -> player p99 (ms)" "$n,lat99"
  row "$n players: connect -> first video frame p95 while $n join, 50 at a time (ms)" "$n,ff95"
  row "$n players: load tool CPU %" "$n,tool" -
done
if [ -n "$delays" ] && [ -n "${D[${delays%% *},cpu_gbit]:-}" ]; then
  echo
  echo "Coalescing sweep: rtmpkit at $delay_players players, once per max_write_delay_ms (nginx-rtmp: its $delay_players-player step above)"
  echo
  echo "| max_write_delay_ms | server CPU % per Gbit/s | latency p99 (ms) | p99 - bound (ms) | players behind | CPU / nginx-rtmp |"
  echo "|---|---|---|---|---|---|"
  for d in $delays; do
    echo "| $d | ${D[$d,cpu_gbit]:-} | ${D[$d,lat99]:-} | $(awk -v l="${D[$d,lat99]:-}" -v d="$d" 'BEGIN { if (l == "") print "-"; else printf "%.1f", l - d }') | ${D[$d,behind]:-} | $(ratio "${D[$d,cpu_gbit]:-}" "${R[nginx,$delay_players,cpu_gbit]:-}") |"
  done
fi
if [ -n "$http_players" ] && [ -n "${H[http,${http_players%% *},cpu_gbit]:-}" ]; then
  echo
  echo "HTTP-FLV against RTMP: rtmpkit, the same players and input over each protocol in turn"
  echo
  echo "| players | protocol | delivered Mbit/s | server CPU % per Gbit/s | latency p99 (ms) | players behind | CPU HTTP-FLV / RTMP |"
  echo "|---|---|---|---|---|---|---|"
  for n in $http_players; do
    echo "| $n | RTMP | ${H[rtmp,$n,mbps]:-} | ${H[rtmp,$n,cpu_gbit]:-} | ${H[rtmp,$n,lat99]:-} | ${H[rtmp,$n,behind]:-} | |"
    echo "| $n | HTTP-FLV | ${H[http,$n,mbps]:-} | ${H[http,$n,cpu_gbit]:-} | ${H[http,$n,lat99]:-} | ${H[http,$n,behind]:-} | $(ratio "${H[http,$n,cpu_gbit]:-}" "${H[rtmp,$n,cpu_gbit]:-}") |"
  done
fi
if [ -n "$ingest_steps" ] && [ -n "${I[rtmpkit,${ingest_steps%% *},server_cpu_pct]:-}${I[nginx,${ingest_steps%% *},server_cpu_pct]:-}" ]; then
  echo
  echo "Ingest: N streams, one publisher ($(basename "$ingest_input"), looped at real time) and one player each"
  echo
  echo "| streams | server | publishers accepted | players behind | messages/s to players | latency p50 / p99 ms | server CPU % of a core | CPU rtmpkit / nginx | us per message | RSS KiB per stream | nginx-rtmp's + largest GOP | input's largest GOP (KiB) | load tool CPU % |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for n in $ingest_steps; do
    for s in $servers; do
      name=$(label "$s")
      r=""; goal=""
      if [ "$s" = rtmpkit ]; then
        r=$(ratio "${I[rtmpkit,$n,server_cpu_pct]:-}" "${I[nginx,$n,server_cpu_pct]:-}")
        if [ -n "${I[nginx,$n,rss_kib_per_stream]:-}" ] && [ -n "${I[rtmpkit,$n,gop_kib]:-}" ]; then
          goal=$(awk -v a="${I[nginx,$n,rss_kib_per_stream]}" -v b="${I[rtmpkit,$n,gop_kib]}" 'BEGIN { printf "%.1f", a + b }')
        fi
      fi
      echo "| $n | $name | ${I[$s,$n,publishing]:-} | ${I[$s,$n,behind]:-} | ${I[$s,$n,msgs_per_s]:-} | ${I[$s,$n,lat_p50_ms]:-} / ${I[$s,$n,lat_p99_ms]:-} | ${I[$s,$n,server_cpu_pct]:-} | $r | ${I[$s,$n,us_per_msg]:-} | ${I[$s,$n,rss_kib_per_stream]:-} | $goal | ${I[$s,$n,gop_kib]:-} | ${I[$s,$n,tool_cpu_pct]:-} |"
    done
  done
fi
if [ -n "$record_steps" ] && [ ${#rec_modes[@]} -gt 0 ]; then
  echo
  echo "Recording: the ingest shape ($(basename "$ingest_input"), one player per stream), every stream recorded"
  echo
  echo "| streams | server | recording | server CPU % of a core | CPU / nginx-rtmp recording | KiB written per s | files | players' latency p99 ms | players behind |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for n in $record_steps; do
    for m in "${rec_modes[@]}"; do
      s=${m%%:*} f=${m##*:}
      name=$s; [ "$s" = nginx ] && name=nginx-rtmp
      r=""; [ "$f" != off ] && r=$(ratio "${REC[$m,$n,server_cpu_pct]:-}" "${REC[nginx:flv,$n,server_cpu_pct]:-}")
      what=$f; [ "$s" = nginx ] && [ "$f" = flv ] && what="record all (flv)"
      echo "| $n | $name | $what | ${REC[$m,$n,server_cpu_pct]:-} | $r | ${REC[$m,$n,kbs]:-} | ${REC[$m,$n,files]:-} | ${REC[$m,$n,lat_p99_ms]:-} | ${REC[$m,$n,behind]:-} |"
    done
  done
fi

# Each server at each latency setting, SRS as a third server.
if [ "${LATENCY:-1}" = 1 ] && [ "$tls" != 1 ]; then
  echo
  BIN=$bin bench/latency.sh "$play_secs" 1
fi
