#!/usr/bin/env bash
# Make sure podman and mmdebstrap are installed, for the container tests (tests/deploy): they
# build keel's images with podman from a Debian base that mmdebstrap makes (no registry is
# needed), then run the image's entrypoint in a chroot of it. If missing: as root with
# apt-get, installs them; otherwise prints a hint and exits 0, and the container tests will
# skip (which fails the run only under CI=true, see tests/conftest.py).
set -euo pipefail

if command -v podman >/dev/null 2>&1 && command -v mmdebstrap >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-podman: installing podman and mmdebstrap for the container tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq podman mmdebstrap >/dev/null
    exit 0
fi
echo "ensure-podman: podman or mmdebstrap not found; install them (apt-get install podman" \
     "mmdebstrap), or the container tests are skipped" >&2
