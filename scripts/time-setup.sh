#!/usr/bin/env bash
# Times the README's set-up commands on a fresh clone, the way a newcomer runs them:
#   1. `make demo` up to the moment keel server listens (then stopped), with the time at which
#      each of its steps ended: the install from requirements/runtime.lock, examples/demo.py;
#   2. `make install` after it: what `make test` adds to the demo's venv;
#   3. `make install` in a second fresh clone: `make test`'s install on its own.
# The figures in the README's Quick start come from this script.
#
#   scripts/time-setup.sh            # warm: uv's and pip's caches as they are on this machine
#   scripts/time-setup.sh --cold     # cold: each clone an empty uv cache and no pip cache
#
# It clones the committed HEAD of this repository (uncommitted changes are not measured) into
# a temporary folder, removed afterwards unless KEEP=1.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d /tmp/keel-time-setup.XXXXXX)"
cold=0
if [ "${1:-}" = --cold ]; then
    cold=1
    export PIP_NO_CACHE_DIR=1
    echo "time-setup: cold caches (each clone its own empty UV_CACHE_DIR, PIP_NO_CACHE_DIR=1)"
fi
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
echo "time-setup: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), in $work"

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

# step NAME COMMAND...: runs COMMAND, its output to a log in $work, and prints its wall time.
step() {
    local name="$1" log start
    log="$work/$(echo "$name" | tr -c 'a-z0-9\n' '-').log"
    shift
    start=$(now)
    if ! "$@" >"$log" 2>&1; then
        echo "time-setup: '$*' failed; its output:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    printf 'time-setup: %-34s %6.1f s   (%s)\n' "$name" "$(since "$start")" "$*"
}

# time_demo: `make demo` on a free port until keel server says it listens; each output line
# is stamped with the seconds since the start, so every step's end can be read off.
time_demo() {
    local port log="$work/make-demo.log" start pid
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    start=$(now)
    export PYTHONUNBUFFERED=1
    setsid bash -c 'make demo SERVER_ARGS="--port $1" 2>&1 | while IFS= read -r line; do
        printf "%7.1f %s\n" "$(echo "$(date +%s.%N) - $2" | bc)" "$line"; done' \
        _ "$port" "$start" >"$log" &
    pid=$!
    until grep -q "Uvicorn running on" "$log" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "time-setup: make demo stopped before keel server listened; its output:" >&2
            tail -n 30 "$log" >&2
            exit 1
        fi
        sleep 0.2
    done
    kill -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    grep -E '^ *[0-9.]+ make: ' "$log" | sed 's/^/time-setup:   make demo: /'
    printf 'time-setup: %-34s %6.1f s   (make demo, until keel server listens on :%s)\n' \
        "demo: make demo" "$(grep -m1 'Uvicorn running on' "$log" | awk '{print $1}')" "$port"
}

git clone -q "$repo" "$work/demo"
git clone -q "$repo" "$work/test"
cd "$work/demo"
[ "$cold" = 0 ] || export UV_CACHE_DIR="$work/uv-cache-demo"
time_demo
step "test after demo: make install" make install
cd "$work/test"
[ "$cold" = 0 ] || export UV_CACHE_DIR="$work/uv-cache-test"
step "test alone: make install" make install
