"""Container images for the deploy tests: a Debian base with Python, made here from Debian's
packages (no registry is reachable), and the podman calls the tests make on images.

``podman run`` is refused in this sandbox (cgroup v1 hybrid, rlimits), so a test reads an
image by mounting it (``podman image mount``) and runs its entrypoint in a chroot of it.
The base is built once with ``mmdebstrap`` and cached as a tarball between runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

#: Debian release of the base images (the machine's own, so its mirror settings apply)
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
#: what a slim Python base holds (python:3.11-slim has the same: an interpreter, CA
#: certificates, no compiler)
PYTHON_PACKAGES = ("python3", "ca-certificates")
#: docs, manuals and translations are left out, as the slim images on registries do
EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
)
CACHE = Path(os.environ.get("KEEL_TEST_IMAGE_CACHE", Path.home() / ".cache" / "keel-tests"))


def podman(*args: str, timeout: float = 600, check: bool = True) -> str:
    """Run ``podman ARGS`` and return its stdout (a failure shows podman's stderr)."""
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def require_podman() -> None:
    """Skip unless podman and mmdebstrap are here (``make container-bins`` installs them)."""
    for tool in ("podman", "mmdebstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found (apt-get install podman mmdebstrap)")


def debian_image(packages: tuple[str, ...] = PYTHON_PACKAGES, name: str = "keel-test-python") -> str:
    """``localhost/NAME:TAG``: a Debian image with ``packages``, imported into podman.

    The tarball is cached under ``KEEL_TEST_IMAGE_CACHE`` (``~/.cache/keel-tests``), keyed by
    the suite and packages, so only the first run on a machine pays the ~20 s of mmdebstrap.
    """
    key = hashlib.sha256(repr((SUITE, MIRROR, packages, EXCLUDES)).encode()).hexdigest()[:12]
    image = f"localhost/{name}:{SUITE}-{key}"
    if _exists(image):
        return image
    tarball = CACHE / f"{name}-{SUITE}-{key}.tar"
    if not tarball.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial")
        command = [
            "mmdebstrap",
            "--variant=minbase",
            "--mode=root",
            "--format=tar",
            f"--include={','.join(packages)}",
            *(f"--dpkgopt=path-exclude={pattern}" for pattern in EXCLUDES),
            SUITE,
            str(partial),
            MIRROR,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            raise AssertionError(f"mmdebstrap failed:\n{done.stderr[-3000:]}")
        partial.rename(tarball)
    podman("import", "--change", "CMD=/bin/bash", str(tarball), image)
    return image


def _exists(image: str) -> bool:
    return subprocess.run(["podman", "image", "exists", image], check=False).returncode == 0


def image_size(image: str) -> int:
    """The image's size in bytes, as ``podman image inspect`` reports it."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).strip())
