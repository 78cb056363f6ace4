"""Uploaded pipelines and input files, on disk under the server's ``work_dir``.

::

    <work_dir>/pipelines/<name>/pipeline.json     who uploaded what, when; the requirements
    <work_dir>/pipelines/<name>/code/<control>.py  the control file
    <work_dir>/pipelines/<name>/code/<support>     the support files
    <work_dir>/pipelines/<name>/params.json        get_params() as last read (a cache)
    <work_dir>/inputs/<file>                       input files to train and run on

Everything is checked before anything is kept: names (no path parts), sizes (counted while
the bytes are copied; the copy stops at the limit), and the control file (Python that
defines top-level ``train`` and ``run_pipeline``). A pipeline is written into a temporary
folder beside its final place and renamed into it, an input file likewise, so a refused or
failed upload leaves nothing behind. Requirements are kept to be shown, never installed.
"""

from __future__ import annotations

import ast
import json
import keyword
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from keel.errors import Conflict, InvalidInput, NotFound
from keel.paths import check_path_segment
from keel.server.guard import size_text

PIPELINES = "pipelines"
INPUTS = "inputs"
CODE = "code"
META = "pipeline.json"
INCOMING = ".incoming"

#: names that would shadow the UI's and the API's own paths under /pipelines/
RESERVED_NAMES = frozenset({"jobs", "runs", "inputs", "upload", "new", "static", "_static"})
#: mlopen's two functions every control file defines at its top level
REQUIRED_FUNCTIONS = ("train", "run_pipeline")
#: file names the job machinery reads itself (a support file must not stand in for them)
RESERVED_FILES = frozenset({"keel.yml"})
MAX_SUPPORT_FILES = 100
MAX_CONTROL_BYTES = 2 * 1024 * 1024  # parsed whole with ast: data belongs in support files
MAX_REQUIREMENTS = 200
MAX_NAME_CHARS = 255
CHUNK = 1024 * 1024

_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class UploadTooLarge(InvalidInput):
    """An upload over the server's ``max_upload_mb`` (HTTP 413)."""


@dataclass
class IncomingFile:
    """An uploaded file as the web layer hands it over: the name the client gave and a
    stream of its bytes (read once, in chunks)."""

    filename: str
    stream: BinaryIO


@dataclass
class StoredFile:
    name: str
    size: int


@dataclass
class Pipeline:
    """An uploaded pipeline."""

    name: str
    control_file: str
    support_files: list[StoredFile] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    uploaded_by: str = ""
    uploaded_at: float = 0.0
    upload_id: str = ""
    folder: Path = field(default=Path("."), repr=False)

    @property
    def code_dir(self) -> Path:
        return self.folder / CODE

    @property
    def module(self) -> str:
        """The control file's module name (what the job imports)."""
        return self.control_file[: -len(".py")]

    @property
    def size(self) -> int:
        control = (self.code_dir / self.control_file).stat().st_size
        return control + sum(f.size for f in self.support_files)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("folder")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], folder: Path) -> Pipeline:
        return cls(
            name=data["name"],
            control_file=data["control_file"],
            support_files=[StoredFile(**f) for f in data.get("support_files", [])],
            requirements=list(data.get("requirements", [])),
            uploaded_by=data.get("uploaded_by", ""),
            uploaded_at=float(data.get("uploaded_at", 0.0)),
            upload_id=data.get("upload_id", ""),
            folder=folder,
        )


@dataclass
class InputFile:
    name: str
    size: int
    modified: float


# --------------------------------------------------------------------------- checks


def check_pipeline_name(name: str) -> str:
    """``name`` if it can name a pipeline (it becomes a folder, a URL part and a model name)."""
    if not isinstance(name, str) or not _PIPELINE_NAME.match(name) or name.endswith("."):
        raise InvalidInput(
            f"pipeline name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    if name.lower() in RESERVED_NAMES:
        raise InvalidInput(f"pipeline name {name!r} is reserved; choose another")
    return name


def check_file_name(name: str, what: str = "file") -> str:
    """``name`` if it is a plain file name: no folder part, not hidden, nothing odd."""
    if not isinstance(name, str) or name == "":
        raise InvalidInput(f"a {what} has no name")
    if "\x00" in name:
        raise InvalidInput(f"{what} name {name!r} contains a NUL character")
    if "/" in name or "\\" in name or os.path.isabs(name):
        raise InvalidInput(f"{what} name {name!r} has a folder part: upload plain file names only")
    if name.startswith("."):
        raise InvalidInput(f"{what} name {name!r} starts with '.': hidden files are refused")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput(f"{what} name {name!r} contains control characters")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_CHARS:
        raise InvalidInput(f"{what} name {name[:40]!r}… is longer than {MAX_NAME_CHARS} bytes")
    # the rules every surface shares: no look-alike slashes, invisible characters (a
    # right-to-left override), drive letters, '~', names that normalise to '..'
    return check_path_segment(name, f"{what} name")


def check_module_name(file_name: str, what: str) -> str:
    """The module a ``.py`` file is imported as, if it can be and hides nothing installed."""
    stem = file_name[: -len(".py")]
    if not stem.isidentifier() or keyword.iskeyword(stem):
        raise InvalidInput(
            f"{what} {file_name!r}: its name must be a Python module name "
            "(letters, digits and '_', not starting with a digit)"
        )
    if stem in sys.stdlib_module_names or stem in sys.builtin_module_names or _installed(stem):
        raise InvalidInput(
            f"{what} {file_name!r} would hide the installed module {stem!r}; rename it"
        )
    return stem


def _installed(module: str) -> bool:
    return module in _installed_modules()


@cache
def _installed_modules() -> frozenset[str]:
    """Top-level modules of the installed distributions (keel's own included, which an
    editable install does not list). Not ``find_spec``: that would also see whatever folder
    this process happened to put on ``sys.path``."""
    from importlib.metadata import packages_distributions

    return frozenset(packages_distributions()) | {"keel"}


def check_control_source(file_name: str, source: bytes) -> None:
    """Refuse a control file that is not Python defining ``train`` and ``run_pipeline``."""
    try:
        text = source.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"control file {file_name!r} is not UTF-8 text") from None
    try:
        tree = ast.parse(text, filename=file_name)
    except SyntaxError as exc:
        where = f"line {exc.lineno}: " if exc.lineno else ""
        raise InvalidInput(
            f"control file {file_name!r} is not valid Python ({where}{exc.msg})"
        ) from None
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    missing = [f"{name}()" for name in REQUIRED_FUNCTIONS if name not in defined]
    if missing:
        raise InvalidInput(
            f"control file {file_name!r} defines no top-level {' or '.join(missing)}: "
            "an mlopen pipeline needs both train(inpt, params=None) and "
            "run_pipeline(input, model, args, params=None)"
        )


def parse_requirements(text: str) -> list[str]:
    """The requirement lines of a requirements list (comments and blank lines dropped)."""
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if len(line) > 200:
            raise InvalidInput(f"requirement line {line[:40]!r}… is longer than 200 characters")
        lines.append(line)
    if len(lines) > MAX_REQUIREMENTS:
        raise InvalidInput(f"more than {MAX_REQUIREMENTS} requirements")
    return lines


class _Budget:
    """The bytes one upload request may still store."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def copy(self, incoming: IncomingFile, target: Path, cap: int | None = None) -> int:
        """Copy ``incoming`` to ``target`` in chunks, stopping as soon as it goes over the
        budget (or ``cap``, for this file alone)."""
        written = 0
        with target.open("xb") as out:
            while True:
                chunk = incoming.stream.read(CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if cap is not None and written > cap:
                    raise UploadTooLarge(
                        f"{incoming.filename!r} is over {size_text(cap)}, the most a control "
                        "file may hold (put data in support files)"
                    )
                if self.used + written > self.limit:
                    raise UploadTooLarge(
                        f"upload too large: {incoming.filename!r} takes it over the "
                        f"{size_text(self.limit)} limit"
                    )
                out.write(chunk)
        self.used += written
        return written


# --------------------------------------------------------------------------- the store


class PipelineStore:
    """The pipelines and input files of one server.

    Args:
        work_dir: the server's work folder.
        max_upload_bytes: the most one upload request may store (all its files together).
    """

    def __init__(self, work_dir: Path, max_upload_bytes: int) -> None:
        self.root = Path(work_dir) / PIPELINES
        self.inputs_dir = Path(work_dir) / INPUTS
        self.max_upload_bytes = max_upload_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self.inputs_dir.mkdir(parents=True, exist_ok=True)

    # --- pipelines -------------------------------------------------------------------

    def list(self) -> list[Pipeline]:
        found = []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not (folder / META).is_file():
                continue
            try:
                found.append(self._read(folder))
            except (OSError, ValueError, KeyError):
                continue  # a folder being replaced right now
        return found

    def get(self, name: str) -> Pipeline:
        check_pipeline_name(name)
        folder = self.root / name
        if not (folder / META).is_file():
            raise NotFound(f"no pipeline {name!r}")
        return self._read(folder)

    def _read(self, folder: Path) -> Pipeline:
        data = json.loads((folder / META).read_text(encoding="utf-8"))
        return Pipeline.from_json(data, folder)

    def save(
        self,
        control: IncomingFile,
        support: Sequence[IncomingFile] = (),
        requirements: str = "",
        name: str | None = None,
        uploaded_by: str = "",
        replace: bool = False,
    ) -> Pipeline:
        """Check and keep an uploaded pipeline (all of it, or nothing)."""
        control_name = check_file_name(control.filename, "control file")
        if not control_name.endswith(".py"):
            raise InvalidInput(
                f"control file {control_name!r} is not a Python file: it must end in .py"
            )
        check_module_name(control_name, "control file")
        name = check_pipeline_name(name or control_name[: -len(".py")])
        if (self.root / name).exists() and not replace:
            raise Conflict(
                f"pipeline {name!r} exists; tick 'replace' to upload a new version of its files"
            )
        support_names = self._support_names(control_name, support)
        wanted = parse_requirements(requirements)
        incoming = self.root / INCOMING / secrets.token_hex(8)
        code = incoming / CODE
        code.mkdir(parents=True)
        try:
            budget = _Budget(self.max_upload_bytes)
            budget.copy(control, code / control_name, cap=MAX_CONTROL_BYTES)
            check_control_source(control_name, (code / control_name).read_bytes())
            stored = [
                StoredFile(n, budget.copy(f, code / n))
                for n, f in zip(support_names, support, strict=True)
            ]
            pipeline = Pipeline(
                name=name,
                control_file=control_name,
                support_files=stored,
                requirements=wanted,
                uploaded_by=uploaded_by,
                uploaded_at=time.time(),
                upload_id=secrets.token_hex(8),
                folder=self.root / name,
            )
            (incoming / META).write_text(json.dumps(pipeline.to_json(), indent=2), "utf-8")
            self._move_into_place(incoming, self.root / name, replace)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        return pipeline

    @staticmethod
    def _support_names(control_name: str, support: Sequence[IncomingFile]) -> list[str]:
        if len(support) > MAX_SUPPORT_FILES:
            raise InvalidInput(f"more than {MAX_SUPPORT_FILES} support files")
        seen = {control_name}
        names = []
        for item in support:
            file_name = check_file_name(item.filename, "support file")
            if file_name in RESERVED_FILES:
                raise InvalidInput(f"support file {file_name!r}: this name is keel's own")
            if file_name in seen:
                raise InvalidInput(f"file {file_name!r} is given twice")
            if file_name.endswith(".py"):
                check_module_name(file_name, "support file")
            seen.add(file_name)
            names.append(file_name)
        return names

    def _move_into_place(self, incoming: Path, final: Path, replace: bool) -> None:
        old = None
        if final.exists():
            if not replace:
                raise Conflict(f"pipeline {final.name!r} was uploaded meanwhile")
            old = self.root / INCOMING / f"{secrets.token_hex(8)}-old"
            os.rename(final, old)
        try:
            os.rename(incoming, final)  # refuses a non-empty target: a concurrent upload won
        except OSError:
            if old is not None:
                os.rename(old, final)
            raise Conflict(f"pipeline {final.name!r} was uploaded meanwhile") from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def delete(self, name: str) -> None:
        folder = self.get(name).folder
        trash = self.root / INCOMING / f"{secrets.token_hex(8)}-deleted"
        os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    # --- input files -----------------------------------------------------------------

    def inputs(self) -> list[InputFile]:
        found = []
        for path in sorted(self.inputs_dir.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            stat = path.stat()
            found.append(InputFile(path.name, stat.st_size, stat.st_mtime))
        return found

    def input_path(self, name: str) -> Path:
        path = self.inputs_dir / check_file_name(name, "input file")
        if not path.is_file():
            raise NotFound(f"no input file {name!r}")
        return path

    def save_input(self, incoming: IncomingFile, replace: bool = False) -> InputFile:
        """Keep an uploaded input file (whole, or not at all)."""
        name = check_file_name(incoming.filename, "input file")
        final = self.inputs_dir / name
        if final.exists() and not replace:
            raise Conflict(f"input file {name!r} exists; tick 'replace' to overwrite it")
        tmp = self.inputs_dir / f".incoming-{secrets.token_hex(8)}"
        try:
            size = _Budget(self.max_upload_bytes).copy(incoming, tmp)
            if replace:
                os.replace(tmp, final)
            else:
                try:
                    os.link(tmp, final)  # fails if the name was taken meanwhile
                except FileExistsError:
                    raise Conflict(f"input file {name!r} was uploaded meanwhile") from None
        finally:
            tmp.unlink(missing_ok=True)
        return InputFile(name, size, final.stat().st_mtime)
