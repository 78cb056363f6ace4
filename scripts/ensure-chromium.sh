#!/usr/bin/env bash
# Make sure a Chromium the browser tests can drive is installed (Playwright is told to use
# it, so `playwright install` and its downloads are never needed). Looks at KEEL_CHROMIUM,
# then /usr/bin/chromium. If missing: as root with apt-get, installs Debian's `chromium`;
# otherwise prints a hint and exits 0, and the browser tests will skip (which fails the run
# only under CI=true, see tests/conftest.py).
set -euo pipefail

target="${KEEL_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$target" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: installing Debian's chromium for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
    exit 0
fi
echo "ensure-chromium: $target not found; install chromium (apt-get install chromium) or set" \
     "KEEL_CHROMIUM, or the browser tests are skipped" >&2
