# What the bench scripts share; sourced, not run. It gives:
# - $work, a temporary directory removed on exit;
# - pids, the processes started (each is killed by pid on exit);
# - wait_port PORT: waits for 127.0.0.1:PORT to accept (10 s), or fails;
# - val KEY LINE: the value of KEY=... in a RESULT line.
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
