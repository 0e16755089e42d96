#!/usr/bin/env bash
# Run ringproxy for real on this machine: three local redis-server processes
# (127.0.0.1:7001..7003) behind the proxy on 127.0.0.1:6380, admin on 127.0.0.1:9121.
#
#   deploy/run-local.sh              # from any directory
#   deploy/run-local.sh --nodes 5    # 5 backends (7001..7005), with a generated config
#
# Needs: cargo (https://rustup.rs), redis-server and redis-cli. When those two are
#   missing, as root it installs them (apt-get: redis-server redis-tools); otherwise
#   it prints the sudo apt-get command to run and exits 1.
# Environment:
#   RINGPROXY_CONFIG  config file to run with (default: conf/ringproxy.yaml in the
#                     repository). Its nodes must be 127.0.0.1:7001..7003. Not used
#                     with --nodes N other than 3 (that writes its own config).
# Stop with Ctrl-C (or SIGTERM): the proxy drains and the redis-servers started here
# are stopped and their temporary data directory removed. If the proxy exits on its
# own, the same cleanup happens and the script exits with the proxy's status.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(dirname "$(dirname "$SCRIPT")")"
CALLER_PWD="$PWD"
cd "$ROOT"

FIRST_PORT=7001
NODES=3
NODES_GIVEN=0

usage() {
  # The comment block at the top of this file.
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$SCRIPT"
}

die() {
  echo "run-local: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --nodes)
      [ $# -ge 2 ] || die "--nodes needs a number"
      NODES="$2"; NODES_GIVEN=1; shift 2 ;;
    --nodes=*)
      NODES="${1#--nodes=}"; NODES_GIVEN=1; shift ;;
    -h|--help)
      usage; exit 0 ;;
    *)
      die "unknown argument: $1 (try --help)" ;;
  esac
done

case "$NODES" in
  ''|*[!0-9]*) die "--nodes must be a number from 1 to 26, got '$NODES'" ;;
esac
if [ "$NODES" -lt 1 ] || [ "$NODES" -gt 26 ]; then
  die "--nodes must be a number from 1 to 26, got '$NODES'"
fi

# --- prerequisites -----------------------------------------------------------
have_redis() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1
}
if ! have_redis; then
  if [ "$(id -u)" != 0 ]; then
    echo "run-local: redis-server or redis-cli not found; install them with:" >&2
    echo "  sudo apt-get install -y redis-server redis-tools" >&2
    exit 1
  fi
  # Debian's redis-server package may start its own service on port 6379: that is
  # left alone (this script uses 7001 and up).
  echo "run-local: installing redis-server redis-tools (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server redis-tools >/dev/null
  have_redis || die "redis-server or redis-cli still not found after apt-get install"
fi

BIN="$ROOT/target/release/ringproxy"
if command -v cargo >/dev/null 2>&1; then
  echo "run-local: cargo build --release"
  cargo build --release
elif [ ! -x "$BIN" ]; then
  die "cargo not found and $BIN does not exist; install Rust from https://rustup.rs"
else
  echo "run-local: cargo not found; using the existing $BIN"
fi
[ -x "$BIN" ] || die "build finished but $BIN is missing"

# --- ports -------------------------------------------------------------------
port_in_use() {
  # A successful TCP connect means something is listening there.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

PORTS=()
for ((i = 0; i < NODES; i++)); do
  PORTS+=($((FIRST_PORT + i)))
done
BUSY=()
for p in "${PORTS[@]}"; do
  if port_in_use "$p"; then BUSY+=("$p"); fi
done
if [ ${#BUSY[@]} -gt 0 ]; then
  die "port(s) ${BUSY[*]} on 127.0.0.1 already in use; stop what listens there (e.g. 'ss -ltnp') and retry"
fi

# --- cleanup -----------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ringproxy-local.XXXXXX")"
REDIS_PIDS=()
PROXY_PID=""
CLEANED=0

# shellcheck disable=SC2329  # called from the traps below
cleanup() {
  if [ "$CLEANED" = 1 ]; then return 0; fi
  CLEANED=1
  if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
  fi
  if [ ${#REDIS_PIDS[@]} -gt 0 ]; then
    echo "run-local: stopping redis-server pid(s) ${REDIS_PIDS[*]}" >&2
    kill -TERM "${REDIS_PIDS[@]}" 2>/dev/null || true
    # Bounded wait (5 s), then SIGKILL whatever is left.
    for ((t = 0; t < 50; t++)); do
      alive=0
      for pid in "${REDIS_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then alive=1; fi
      done
      if [ "$alive" = 0 ]; then break; fi
      sleep 0.1
    done
    kill -KILL "${REDIS_PIDS[@]}" 2>/dev/null || true
    wait "${REDIS_PIDS[@]}" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}

# shellcheck disable=SC2329  # called from the traps below
on_signal() {
  echo "run-local: $1: stopping" >&2
  cleanup
  # 128 + signal number, as a shell reports a process killed by that signal.
  case "$1" in
    INT) exit 130 ;;
    HUP) exit 129 ;;
    *) exit 143 ;;
  esac
}

trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

# --- config ------------------------------------------------------------------
if [ "$NODES_GIVEN" = 1 ] && [ "$NODES" != 3 ]; then
  [ -z "${RINGPROXY_CONFIG:-}" ] \
    || die "--nodes $NODES writes its own config; do not set RINGPROXY_CONFIG with it"
  CONFIG="$WORK/ringproxy.yaml"
  {
    echo "# generated by deploy/run-local.sh --nodes $NODES"
    echo "listen: 127.0.0.1:6380"
    echo "admin: 127.0.0.1:9121"
    echo "nodes:"
    letters=abcdefghijklmnopqrstuvwxyz
    for ((i = 0; i < NODES; i++)); do
      echo "  - name: cache-${letters:i:1}"
      echo "    addr: 127.0.0.1:${PORTS[i]}"
    done
  } >"$CONFIG"
else
  CONFIG="${RINGPROXY_CONFIG:-$ROOT/conf/ringproxy.yaml}"
  case "$CONFIG" in
    /*) ;;
    *) CONFIG="$CALLER_PWD/$CONFIG" ;;  # relative to where the script was started
  esac
  [ -f "$CONFIG" ] || die "config $CONFIG not found (set RINGPROXY_CONFIG=/path/to/file.yaml)"
fi

# --- redis-servers -----------------------------------------------------------
for p in "${PORTS[@]}"; do
  mkdir -p "$WORK/redis-$p"
  redis-server --port "$p" --bind 127.0.0.1 --dir "$WORK/redis-$p" \
    --save "" --appendonly no --daemonize no \
    --logfile "$WORK/redis-$p/redis.log" &
  REDIS_PIDS+=($!)
done

# Wait (at most 10 s each) until every server answers PING.
for ((i = 0; i < NODES; i++)); do
  p="${PORTS[i]}"; pid="${REDIS_PIDS[i]}"
  ok=0
  for ((t = 0; t < 100; t++)); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$p" ping 2>/dev/null)" = "PONG" ]; then
      ok=1; break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run-local: redis-server on port $p exited; its log:" >&2
      tail -n 20 "$WORK/redis-$p/redis.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  [ "$ok" = 1 ] || die "redis-server on port $p did not answer PING within 10 s (log: $WORK/redis-$p/redis.log)"
done
echo "run-local: redis-server up on 127.0.0.1:${PORTS[*]} (data in $WORK)"

# --- proxy -------------------------------------------------------------------
cat <<EOF

  ringproxy: config $CONFIG
  try: redis-cli -p 6380 set foo bar; curl localhost:9121/metrics
  stop: Ctrl-C

EOF

# In the background + wait, so that SIGTERM to this script is handled at once
# (a foreground child would delay the trap until it exits).
"$BIN" --config "$CONFIG" &
PROXY_PID=$!
status=0
wait "$PROXY_PID" || status=$?
PROXY_PID=""
echo "run-local: ringproxy exited with status $status" >&2
exit "$status"
