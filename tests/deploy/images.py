"""Container images for the deploy tests: a Debian base with Python, made here from Debian's
packages (no registry is reachable), and the podman calls the tests make on images.

``podman run`` is refused in this sandbox (cgroup v1 hybrid, rlimits), so a test reads an
image by mounting it (``podman image mount``) and runs its entrypoint in a chroot of it.
The base is built once with ``mmdebstrap`` and cached as a tarball between runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import uuid
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


def debian_image(
    packages: tuple[str, ...] = PYTHON_PACKAGES, name: str = "keel-test-python"
) -> str:
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


class ImageRoot:
    """A writable copy of an image's filesystem (``podman create`` + ``podman mount``: no
    runtime involved), where its entrypoint runs in a chroot with the image's environment
    and working folder, as ``podman run IMAGE ARGS`` would run it."""

    def __init__(self, image: str) -> None:
        self.image = image
        config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image))
        self.env = dict(item.split("=", 1) for item in config.get("Env") or [])
        self.entrypoint = list(config.get("Entrypoint") or [])
        self.cmd = list(config.get("Cmd") or [])
        self.workdir = config.get("WorkingDir") or "/"
        self.labels = dict(config.get("Labels") or {})
        self.name = f"keel-test-{uuid.uuid4().hex[:12]}"
        self.root: Path | None = None
        self._mounted: list[Path] = []

    def __enter__(self) -> ImageRoot:
        podman("create", "--name", self.name, self.image)
        self.root = Path(podman("mount", self.name).strip())
        for name, how in (("proc", ["-t", "proc", "proc"]), ("dev", ["--rbind", "/dev"])):
            target = self.root / name
            target.mkdir(exist_ok=True)
            subprocess.run(["mount", *how, str(target)], check=True)
            self._mounted.append(target)
        return self

    def __exit__(self, *exc: object) -> None:
        for target in reversed(self._mounted):
            subprocess.run(["umount", "-R", "-l", str(target)], check=False)
        podman("umount", self.name, check=False)
        podman("rm", "-f", self.name, check=False)

    def path(self, inside: str) -> Path:
        """The host path of ``inside`` (an absolute path in the image)."""
        assert self.root is not None
        return self.root / inside.lstrip("/")

    def command(self, args: list[str], env: dict[str, str] | None = None) -> list[str]:
        """``chroot`` running the entrypoint with ``args`` (the image's CMD when empty)."""
        assert self.root is not None
        variables = {**self.env, "HOME": "/root", **(env or {})}
        inner = " ".join(shlex.quote(a) for a in [*self.entrypoint, *(args or self.cmd)])
        return [
            "chroot",
            str(self.root),
            "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in variables.items()),
            "/bin/sh",
            "-c",
            f"cd {shlex.quote(self.workdir)} && exec {inner}",
        ]

    def run(
        self, args: list[str], env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(args, env), capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(args, env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
