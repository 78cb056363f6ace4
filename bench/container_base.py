"""The base image both container builds start from: a local stand-in for ``python:3.11-slim``.

No registry is reachable here, so MLflow's ``FROM python:3.11.7-slim`` cannot be pulled. The
stand-in is made from Debian bookworm's packages (the official image is Debian bookworm too,
with CPython built into ``/usr/local``): ``mmdebstrap`` of ``python3``, ``python3-pip``,
``python3-venv``, ``python-is-python3`` and the official image's ``ca-certificates``,
``netbase`` and ``tzdata`` (docs, manuals and locales left out, as the slim images do; merged
``/usr`` made by mmdebstrap's hook, so no perl), imported into podman, then one layer that makes
it behave like the official image where the builds notice:

* Debian's ``EXTERNALLY-MANAGED`` marker is removed, so ``pip install`` into the system Python
  works (the official image has no such marker);
* ``LANG=C.UTF-8`` and ``CMD ["python3"]``, as the official image sets, and
  ``debian:bookworm-slim``'s apt settings (its three suites; ``docker-clean``: no package
  caches kept after ``apt-get``; compressed indexes; no translations);
* the host's CA bundle replaces Debian's and ``/etc/pip.conf`` points pip at it: this machine
  reaches PyPI through a TLS-intercepting proxy, and pip (newer than Debian's, once a build
  upgrades it) reads certifi's bundle unless told otherwise.

The result is tagged under every name asked for (``docker.io/library/python:3.11.7-slim`` for
MLflow's Dockerfile), so ``podman build`` finds it locally. Both systems build on the same
image, so what each adds on top of it is compared on equal terms. What still differs from the
official image: Debian's CPython 3.11.2 in ``/usr/bin`` (with its compiled ``.pyc`` files) and
Debian's pip 23.0.1, setuptools 66 and wheel, where the official image has CPython 3.11.x built
from source in ``/usr/local`` and the pip it bundles.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
#: python:3.11-slim's runtime packages (ca-certificates, netbase, tzdata) and a Python with
#: pip, venv and a ``python`` command, as its CPython in /usr/local has
PACKAGES = (
    "python3",
    "python3-pip",
    "python3-venv",
    "python-is-python3",
    "ca-certificates",
    "netbase",
    "tzdata",
)
EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
)
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
CACHE = Path(os.environ.get("KEEL_BENCH_IMAGE_CACHE", Path.home() / ".cache" / "keel-bench"))
NAME = "localhost/keel-bench-python"

_LAYER = """FROM {rootfs}
RUN rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED /etc/apt/sources.list
COPY debian.sources /etc/apt/sources.list.d/debian.sources
COPY docker-clean docker-gzip-indexes docker-no-languages /etc/apt/apt.conf.d/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY pip.conf /etc/pip.conf
ENV LANG=C.UTF-8
CMD ["python3"]
"""
_PIP_CONF = "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
# debian:bookworm-slim's apt settings (the official Python images inherit them): the three
# suites it updates from, no package caches kept, indexes kept compressed, no translations
_APT_FILES = {
    "debian.sources": (
        "Types: deb\nURIs: http://deb.debian.org/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://deb.debian.org/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    ),
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-no-languages": 'Acquire::Languages "none";\n',
}


class ContainerBenchError(RuntimeError):
    """A tool the container benchmark needs failed (the message says which and why)."""


def run(
    command: list[str],
    timeout: float = 1800,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    both: bool = False,
) -> str:
    """Run ``command`` and return its stdout (``both``: stdout then stderr); a failure
    raises with the end of its stderr."""
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise ContainerBenchError(f"{' '.join(command[:4])} … failed ({done.returncode}): {tail}")
    return done.stdout + done.stderr if both else done.stdout


def exists(image: str) -> bool:
    return subprocess.run(["podman", "image", "exists", image], check=False).returncode == 0


def image_size(image: str) -> int:
    """The image's size in bytes, as ``podman image inspect`` reports it."""
    return int(run(["podman", "image", "inspect", "--format", "{{.Size}}", image]).strip())


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _rootfs() -> str:
    """The bare Debian image (imported from a cached mmdebstrap tarball)."""
    key = _key(SUITE, MIRROR, PACKAGES, EXCLUDES)
    image = f"{NAME}-rootfs:{SUITE}-{key}"
    if exists(image):
        return image
    tarball = CACHE / f"python-{SUITE}-{key}.tar"
    if not tarball.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_name(tarball.name + ".partial")
        partial.unlink(missing_ok=True)
        run([
            "mmdebstrap",
            "--variant=minbase",
            "--mode=root",
            "--format=tar",  # the output name does not end in .tar: say it
            # merged /usr made by a hook, not by the usrmerge package (which pulls in perl)
            "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
            f"--include={','.join(PACKAGES)}",
            *(f"--dpkgopt=path-exclude={pattern}" for pattern in EXCLUDES),
            SUITE,
            str(partial),
            MIRROR,
        ])  # fmt: skip
        partial.rename(tarball)
    run(["podman", "import", "--change", "CMD=/bin/bash", str(tarball), image])
    return image


def python_base(*tags: str) -> str:
    """The stand-in base image's name (built once, then cached), tagged also as ``tags``."""
    rootfs = _rootfs()
    ca = HOST_CA.read_bytes() if HOST_CA.exists() else b""
    key = _key(rootfs, _LAYER, _PIP_CONF, _APT_FILES, hashlib.sha256(ca).hexdigest())
    image = f"{NAME}:{SUITE}-{key}"
    if not exists(image):
        with tempfile.TemporaryDirectory(prefix="keel-bench-base-") as folder:
            context = Path(folder)
            (context / "Containerfile").write_text(_LAYER.format(rootfs=rootfs))
            (context / "ca-certificates.crt").write_bytes(HOST_CA.read_bytes())
            (context / "pip.conf").write_text(_PIP_CONF)
            for name, text in _APT_FILES.items():
                (context / name).write_text(text)
            run(["podman", "build", "--isolation=chroot", "-q", "-t", image, str(context)])
    for tag in tags:
        run(["podman", "tag", image, tag])
    return image


if __name__ == "__main__":  # python -m bench.container_base: build it, print name and size
    built = python_base()
    print(built, image_size(built))


def remove_image(image: str) -> None:
    """Remove ``image`` if it is there (its untagged layers go with it, so the next build of
    the same name starts cold)."""
    if exists(image):
        run(["podman", "rmi", "--force", image])


def layers(image: str) -> list[dict[str, object]]:
    """The image's layers, newest first: ``{"size": bytes, "step": what made it}``."""
    text = run(["podman", "history", "--no-trunc", "--format", "json", image])
    import json

    return [
        {"size": int(h.get("size", 0)), "step": h.get("CreatedBy", "")} for h in json.loads(text)
    ]


def run_in_image(
    image: str, argv: list[str], env: dict[str, str], workdir: str, timeout: float = 300
) -> str:
    """Run ``argv`` in a writable container of ``image`` (``podman create`` + ``podman mount``
    + ``chroot``, as ``podman run`` is refused here) with ``/proc`` bound in a private mount
    namespace; its stdout. ``env`` is the whole environment (the image's own is not read)."""
    container = run(["podman", "create", image]).strip()
    try:
        root = run(["podman", "mount", container]).strip()
        script = 'mount --bind /proc "$0/proc" && cd "$0" && exec chroot "$0" "$@"'
        inner = ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), "sh", "-c"]
        inner += ['cd "$0" && exec "$@"', workdir, *argv]
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, root]
        return run([*command, *inner], timeout=timeout)
    finally:
        subprocess.run(["podman", "umount", container], capture_output=True, check=False)
        subprocess.run(["podman", "rm", "--force", container], capture_output=True, check=False)
