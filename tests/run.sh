#!/usr/bin/env bash
# Run ringproxy's tests: install what they need when it is missing, then
# `cargo test --locked` (extra arguments are passed on to it).
#
#   tests/run.sh                        # everything (what CI runs)
#   tests/run.sh --test resp_reference  # one test file
#
# The tests start their own redis-server and nutcracker processes on free loopback
# ports. They need, besides cargo (https://rustup.rs):
#   redis-server, redis-cli, redis-benchmark, nutcracker (Debian packages
#   redis-server, redis-tools, nutcracker; with python3 and pip if missing), and
#   redis-py >= 5 (from PyPI, for the RESP3 client tests).
# As root, missing Debian packages are installed with apt-get; otherwise the script
# prints the apt-get command to run with sudo and exits 1. Debian's redis-server
# package may start a service on port 6379: it is left alone (no test uses it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# nutcracker installs into /usr/sbin, which is not on every user's PATH.
case ":$PATH:" in
  *:/usr/sbin:*) ;;
  *) export PATH="$PATH:/usr/sbin" ;;
esac

say() {
  echo "tests/run.sh: $*"
}

# --- Debian packages ---------------------------------------------------------
packages=()
need() {
  packages+=("$@")
}
# An executable on PATH (not a shell builtin: the tests run `kill` as a program).
have() {
  type -P "$1" >/dev/null
}

{ have redis-server && have redis-cli && have redis-benchmark && have nutcracker; } \
  || need redis-server redis-tools nutcracker
have python3 || need python3
{ have python3 && python3 -m pip --version >/dev/null 2>&1; } || need python3-pip
have timeout || need coreutils
have kill || need procps

if [ "${#packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${packages[*]}; install them with:" >&2
    echo "  sudo apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
  say "installing ${packages[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${packages[@]}" >/dev/null
  for tool in redis-server redis-cli redis-benchmark nutcracker python3 timeout kill; do
    have "$tool" || { say "$tool still not found after apt-get install" >&2; exit 1; }
  done
fi

# --- redis-py ----------------------------------------------------------------
if ! python3 -c 'import redis, sys; sys.exit(int(redis.__version__.split(".")[0]) < 5)' 2>/dev/null; then
  say "installing redis-py (>= 5, for RESP3) with pip"
  # Debian's Python refuses pip installs outside a venv unless told otherwise
  # (as a normal user, pip then installs into ~/.local).
  python3 -m pip install --quiet 'redis>=5' 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages 'redis>=5'
fi

# --- tests -------------------------------------------------------------------
say "cargo test --locked${*:+ $*}"
exec cargo test --locked "$@"
