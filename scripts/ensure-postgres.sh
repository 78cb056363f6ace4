#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries (initdb, pg_ctl, postgres) are installed, for the
# throwaway test server of tests/pg.py. Searches like tests/pg.py does:
#   env KEEL_PG_BIN (authoritative when set), `pg_config --bindir`,
#   the newest /usr/lib/postgresql/*/bin, initdb on PATH.
# If none is found: as root with apt-get, installs the `postgresql` package (without starting
# the system service); otherwise prints a hint and exits 0, and the postgres tests will skip
# (which fails the run only under CI=true, see tests/conftest.py).
set -euo pipefail

has_server_binaries() {
    [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]
}

find_bindir() {
    local dir
    if [ -n "${KEEL_PG_BIN:-}" ]; then
        has_server_binaries "$KEEL_PG_BIN" && echo "$KEEL_PG_BIN"
        return 0  # authoritative: never fall back to another installation
    fi
    if command -v pg_config >/dev/null 2>&1; then
        dir=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$dir" ] && has_server_binaries "$dir"; then echo "$dir"; return 0; fi
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -rn); do
        if has_server_binaries "$dir"; then echo "$dir"; return 0; fi
    done
    if dir=$(command -v initdb 2>/dev/null); then
        dir=$(dirname "$(readlink -f "$dir")")
        if has_server_binaries "$dir"; then echo "$dir"; return 0; fi
    fi
    return 0
}

bindir=$(find_bindir)
if [ -n "$bindir" ]; then
    echo "ensure-postgres: using $("$bindir/postgres" --version) in $bindir"
    exit 0
fi
if [ -n "${KEEL_PG_BIN:-}" ]; then
    echo "ensure-postgres: KEEL_PG_BIN=$KEEL_PG_BIN holds no initdb/pg_ctl/postgres; installing nothing (unset it to use the system binaries)" >&2
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-postgres: no PostgreSQL server binaries found; install them (e.g. 'sudo apt-get install postgresql') or set KEEL_PG_BIN, else the postgres tests skip" >&2
    exit 0
fi

echo "ensure-postgres: no PostgreSQL server binaries found; installing the postgresql package"
export DEBIAN_FRONTEND=noninteractive
# Keep the package's maintainer scripts from starting the system service: the tests run their
# own throwaway server. policy-rc.d exiting 101 means "action forbidden" to invoke-rc.d.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null

bindir=$(find_bindir)
if [ -z "$bindir" ]; then
    echo "ensure-postgres: installed postgresql but still found no initdb/pg_ctl/postgres" >&2
    exit 1
fi
echo "ensure-postgres: installed $("$bindir/postgres" --version) in $bindir"
