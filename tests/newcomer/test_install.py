"""The newcomer's set-up (issue 20): every install comes from a lock kept in requirements/.

- The locks pin one version per package, cover every dependency and extra of pyproject.toml at
  a version it allows and pin nothing for keel that it no longer asks for, and the demo's lock
  is the test lock's versions (a pyproject.toml change without `make lock` fails here, saying
  to run it).
- The README's `make demo` install (`make install-runtime`), run into a throwaway venv, gives a
  venv where `keel --help` and `import keel, sklearn` work, at the lock's versions; and the
  Makefile reinstalls when pyproject.toml or the lock changes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
DEV_LOCK = ROOT / "requirements" / "dev.lock"
#: the extras `make demo` installs besides keel's own dependencies
DEMO_EXTRAS = ("sklearn",)
RERUN = "run `make lock` and commit requirements/"


def _pins(lock: Path) -> dict[str, list[Requirement]]:
    """Every requirement line of LOCK (`name==version ; marker  # via ...`), by package name."""
    pins: dict[str, list[Requirement]] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        pins.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    return pins


def _pinned_for_keel(lock: Path) -> set[str]:
    """The packages LOCK pins because keel asks for them (`# via ..., keel (pyproject.toml)`)."""
    names = set()
    for line in lock.read_text(encoding="utf-8").splitlines():
        text, _, comment = line.partition("#")
        if text.strip() and "keel (pyproject.toml)" in comment:
            names.add(canonicalize_name(Requirement(text.strip()).name))
    return names


def _pinned_version(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    return spec.version


def _pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda path: path.name)
def test_each_lock_pins_exactly_one_version_of_each_package(lock: Path) -> None:
    assert lock.is_file(), f"{lock.relative_to(ROOT)} is missing: {RERUN}"
    pins = _pins(lock)
    assert len(pins) > 50, f"{lock.name} holds only {len(pins)} packages"  # the parse works
    for name, requirements in pins.items():
        assert len(requirements) == 1, f"{lock.name} pins {name} {len(requirements)} times"
        (requirement,) = requirements
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", (
            f"{lock.name}: {requirement} is not one exact version"
        )


def test_the_locks_cover_every_dependency_and_extra_of_pyproject() -> None:
    project = _pyproject()["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    dev, runtime = _pins(DEV_LOCK), _pins(RUNTIME_LOCK)
    wanted = {
        DEV_LOCK: [*project["dependencies"], *(req for reqs in extras.values() for req in reqs)],
        RUNTIME_LOCK: [
            *project["dependencies"],
            *(req for extra in DEMO_EXTRAS for req in extras[extra]),
        ],
    }
    for lock, requirements in wanted.items():
        pins = dev if lock == DEV_LOCK else runtime
        for text in requirements:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            assert name in pins, (
                f"pyproject.toml asks for {text!r}, which {lock.name} does not pin: {RERUN}"
            )
            version = _pinned_version(pins[name][0])
            assert requirement.specifier.contains(version, prereleases=True), (
                f"pyproject.toml asks for {text!r} but {lock.name} pins {name}=={version}: {RERUN}"
            )
        # A pin kept for keel itself that pyproject.toml no longer asks for (uv's annotation).
        direct = {canonicalize_name(Requirement(text).name) for text in requirements}
        for name in _pinned_for_keel(lock):
            assert name in direct, (
                f"{lock.name} pins {name} for keel, but pyproject.toml no longer asks for it: "
                f"{RERUN}"
            )
    # The demo gets the versions the tests ran with: runtime.lock is dev.lock's versions.
    for name, (requirement,) in runtime.items():
        assert name in dev, f"runtime.lock pins {name}, which dev.lock does not: {RERUN}"
        assert _pinned_version(requirement) == _pinned_version(dev[name][0]), (
            f"runtime.lock pins {requirement.name}=={_pinned_version(requirement)}, "
            f"dev.lock {_pinned_version(dev[name][0])}: {RERUN}"
        )


def _make_env() -> dict[str, str]:
    # Under `make test` the outer make's flags would leak into the inner one.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    env.pop("VIRTUAL_ENV", None)
    return env


@pytest.mark.parametrize(
    ("target", "stamp", "changed"),
    [
        ("install-runtime", ".installed-runtime", "pyproject.toml"),
        ("install-runtime", ".installed-runtime", "requirements/runtime.lock"),
        ("install", ".installed", "pyproject.toml"),
        ("install", ".installed", "requirements/dev.lock"),
    ],
)
def test_an_install_is_redone_when_pyproject_or_its_lock_changes(
    tmp_path: Path, target: str, stamp: str, changed: str
) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    venv.mkdir()
    stamp_path = venv / stamp
    stamp_path.touch()
    newest = max(path.stat().st_mtime for path in (ROOT / "pyproject.toml", RUNTIME_LOCK, DEV_LOCK))
    os.utime(stamp_path, (newest + 60, newest + 60))  # installed after the last change of each

    def up_to_date(*what_if: str) -> bool:
        # `make -q` answers 0 when the target is up to date; `-W FILE` pretends FILE changed.
        args = [make, "-q", *what_if, target, f"VENV={venv}"]
        result = subprocess.run(args, cwd=ROOT, env=_make_env(), capture_output=True, text=True)
        assert result.returncode in (0, 1), result.stderr
        return result.returncode == 0

    assert up_to_date()
    assert not up_to_date("-W", changed)


@pytest.mark.slow
@pytest.mark.newcomer
def test_the_demo_install_gives_a_venv_where_keel_and_sklearn_run(tmp_path: Path) -> None:
    """`make install-runtime` (what `make demo` runs first) into an empty venv folder."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    result = subprocess.run(
        [make, "install-runtime", f"VENV={venv}"],
        cwd=ROOT,
        env=_make_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Each step says what it does, and the long one is not silenced.
    assert "make: installing keel and its runtime dependencies" in result.stdout
    assert "requirements/runtime.lock" in result.stdout

    bin_dir = venv / "bin"
    help_run = subprocess.run(
        [bin_dir / "keel", "--help"], capture_output=True, text=True, timeout=120
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "Usage: keel" in help_run.stdout

    probe = (
        "import json, importlib.metadata as m, keel, sklearn; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    versions_run = subprocess.run(
        [bin_dir / "python", "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert versions_run.returncode == 0, versions_run.stderr
    installed = {canonicalize_name(k): v for k, v in json.loads(versions_run.stdout).items()}
    for name, (requirement,) in _pins(RUNTIME_LOCK).items():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        assert installed.get(name) == _pinned_version(requirement), (
            f"{name}: installed {installed.get(name)}, runtime.lock pins {requirement}"
        )
    # Only the demo's set: none of the test toolchain.
    for tool in ("pytest", "mlflow", "playwright", "dask", "moto"):
        assert tool not in installed, f"the demo's install also installed {tool}"
