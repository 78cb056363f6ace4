"""A pipeline's declared parameters: read from its ``get_params()``, turned into form fields,
and the values people send checked against them.

``get_params`` is user code, so it runs in a subprocess
(``python -P -m keel.server.pipelines.params CODE_DIR MODULE OUT MB``) with a time limit,
the pipeline jobs' memory limit and their environment (never the server's: see
:mod:`keel.jobs.environment`), called as ``get_params(False)`` for the training form and
``get_params(True)`` for the run form (mlopen's ``run`` argument). What it returns may take
either form seen in mlopen pipelines:

* mlopen's mapping: ``{"k": ("integer", {"default": 5}), "data": "file",
  "kind": ("choice", {"choices": ["a", "b"]})}``;
* a list of fields: ``[{"name": "C", "type": "number", "default": 1.0, "label": "…"}]``.

Types: ``string``, ``integer``, ``number`` (``float``), ``bool``, ``choice`` (with
``choices``) and ``file`` (one of the server's input files, handed to the pipeline as a file
object like the input, see :mod:`keel.compat.mlopen.files`; mlopen's ``upload`` is read as
``file``). A string left empty reaches the pipeline as ``""`` and an unchecked bool as
False, as mlopen's form sent them; numbers and files left empty are left out. The answer is
cached in the pipeline's folder until its files are uploaded again.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.jobs.environment import JobEnvironment
    from keel.server.pipelines.store import Pipeline

CACHE_FILE = "params.json"
TIMEOUT_S = 30.0
FIELD_TYPES = ("string", "integer", "number", "bool", "choice", "file")
_TYPE_NAMES = {
    "string": "string",
    "str": "string",
    "text": "string",
    "char": "string",
    "integer": "integer",
    "int": "integer",
    "float": "number",
    "number": "number",
    "double": "number",
    "bool": "bool",
    "boolean": "bool",
    "checkbox": "bool",
    "choice": "choice",
    "select": "choice",
    "enum": "choice",
    "file": "file",
    "upload": "file",
    "input": "file",
}
_TRUE = frozenset({"1", "true", "on", "yes", "y", "t"})
_FALSE = frozenset({"0", "false", "off", "no", "n", "f", ""})
#: what a field left empty still hands the pipeline, as mlopen's form did
_BLANK: dict[str, Any] = {"string": "", "bool": False}


@dataclass
class ParamField:
    """One form field."""

    name: str
    type: str = "string"
    label: str = ""
    default: Any = None
    choices: list[Any] | None = None
    required: bool = False
    help: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PipelineParams:
    """The fields of a pipeline's training and run forms."""

    train: list[ParamField] = field(default_factory=list)
    run: list[ParamField] = field(default_factory=list)
    declared: bool = False  # whether the control file defines get_params
    error: str | None = None  # why get_params could not be read
    warnings: list[str] = field(default_factory=list)

    def fields(self, phase: str) -> list[ParamField]:
        return self.train if phase == "train" else self.run

    def to_json(self) -> dict[str, Any]:
        return {
            "train": [f.to_json() for f in self.train],
            "run": [f.to_json() for f in self.run],
            "declared": self.declared,
            "error": self.error,
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- reading


def read_params(
    pipeline: Pipeline,
    timeout_s: float = TIMEOUT_S,
    memory_mb: int | None = None,
    environment: JobEnvironment | None = None,
) -> PipelineParams:
    """The pipeline's parameters (from the cache, else from ``get_params`` in a subprocess
    with a time limit and, given ``memory_mb``, a memory limit). The subprocess gets the
    environment a job of the server's executor gets (``environment``), never the server's."""
    cache = pipeline.folder / CACHE_FILE
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = None
    if not (isinstance(cached, dict) and cached.get("upload_id") == pipeline.upload_id):
        answer = _call_get_params(pipeline, timeout_s, memory_mb, environment)
        cached = {"upload_id": pipeline.upload_id, **answer}
        from keel.jobs.files import write_json

        # OSError: the pipeline was replaced meanwhile; the answer is still right for now
        with contextlib.suppress(OSError):
            write_json(cache, cached)
    return params_from(cached)


def params_from(answer: Mapping[str, Any]) -> PipelineParams:
    """:class:`PipelineParams` from what the subprocess answered."""
    if answer.get("error"):
        return PipelineParams(declared=bool(answer.get("declared")), error=str(answer["error"]))
    warnings: list[str] = []
    train = normalise(answer.get("train"), warnings, "training")
    run = normalise(answer.get("run"), warnings, "run")
    return PipelineParams(train, run, bool(answer.get("declared")), None, warnings)


def _call_get_params(
    pipeline: Pipeline,
    timeout_s: float,
    memory_mb: int | None = None,
    environment: JobEnvironment | None = None,
) -> dict[str, Any]:
    from keel.jobs.environment import JobEnvironment

    with tempfile.TemporaryDirectory(prefix="keel-params-") as tmp:
        out = Path(tmp) / "params.json"
        command = [
            sys.executable,
            "-P",
            "-m",
            "keel.server.pipelines.params",
            str(pipeline.code_dir),
            pipeline.module,
            str(out),
            str(memory_mb or 0),
        ]
        env = (environment or JobEnvironment()).build({"PYTHONDONTWRITEBYTECODE": "1"})
        try:
            done = subprocess.run(
                command,
                cwd=str(pipeline.code_dir),
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                start_new_session=True,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"get_params() did not answer within {timeout_s:g} s"}
        try:
            answer = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            tail = (done.stderr or b"").decode("utf-8", "replace").strip().splitlines()
            detail = tail[-1] if tail else f"exit code {done.returncode}"
            return {"error": f"reading get_params() failed: {detail}"}
    return answer if isinstance(answer, dict) else {"error": "get_params() answered nothing"}


def normalise(raw: Any, warnings: list[str], phase: str) -> list[ParamField]:
    """Form fields from what ``get_params`` returned (either of the two forms)."""
    if raw in (None, "", [], {}):
        return []
    items: list[tuple[str, Any]]
    if isinstance(raw, Mapping):
        items = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        items = []
        for entry in raw:
            if isinstance(entry, Mapping) and entry.get("name"):
                items.append((str(entry["name"]), entry))
            else:
                warnings.append(f"{phase} parameter {entry!r} has no name: left out")
    else:
        warnings.append(
            f"get_params() returned a {type(raw).__name__} for the {phase} form: "
            "expected a mapping or a list of fields"
        )
        return []
    fields = []
    for name, spec in items:
        kind, options = _type_and_options(spec)
        field_type = _TYPE_NAMES.get(str(kind).lower())
        if field_type is None:
            warnings.append(f"{phase} parameter {name!r}: unknown type {kind!r}, read as text")
            field_type = "string"
        choices = options.get("choices", options.get("options"))
        if field_type == "choice" and not (isinstance(choices, list) and choices):
            warnings.append(f"{phase} parameter {name!r} is a choice without choices: text")
            field_type, choices = "string", None
        default = options.get("default")
        if field_type == "choice" and default is None:
            default = choices[0]
        fields.append(
            ParamField(
                name=name,
                type=field_type,
                label=str(options.get("label") or name),
                default=default,
                choices=list(choices) if field_type == "choice" else None,
                required=bool(options.get("required", False)),
                help=str(options.get("help") or options.get("description") or ""),
            )
        )
    return fields


def _type_and_options(spec: Any) -> tuple[Any, Mapping[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, list | tuple):
        kind = spec[0] if spec else "string"
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
        return kind, options
    if isinstance(spec, Mapping):
        return spec.get("type", "string"), spec
    return "string", {}


# --------------------------------------------------------------------------- values


def coerce(
    fields: list[ParamField],
    values: Mapping[str, Any],
    input_path: Callable[[str], Path],
    from_form: bool = False,
) -> dict[str, Any]:
    """The parameters to hand the pipeline: ``values`` checked against ``fields``.

    Args:
        fields: the declared fields.
        values: what was sent (a form's strings, or JSON values).
        input_path: the path of an input file by name (``file`` fields).
        from_form: an HTML form: an absent checkbox means False.
    """
    known = {f.name for f in fields}
    unknown = sorted(set(values) - known)
    if unknown and not from_form:
        listed = ", ".join(sorted(known)) or "none"
        raise InvalidInput(f"unknown parameter {unknown[0]!r}; this pipeline takes: {listed}")
    out: dict[str, Any] = {}
    for spec in fields:
        value = values.get(spec.name)
        if spec.type == "bool" and from_form:
            value = value is not None and str(value).strip().lower() not in _FALSE
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if spec.default is not None:
                value = spec.default
            elif spec.required:
                raise InvalidInput(f"parameter {spec.label!r} is required")
            elif spec.type in _BLANK:  # mlopen's form sent its empty field: "" or unchecked
                value = _BLANK[spec.type]
            else:
                continue
        out[spec.name] = _value(spec, value, input_path)
    return out


def _value(spec: ParamField, value: Any, input_path: Callable[[str], Path]) -> Any:
    what = f"parameter {spec.label!r}"
    if spec.type == "string":
        return value if isinstance(value, str) else json.dumps(value)
    if spec.type == "integer":
        if isinstance(value, bool):
            raise InvalidInput(f"{what}: {value!r} is not an integer")
        try:
            number = float(value) if isinstance(value, str) and "." in value else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number)
        except (TypeError, ValueError):
            raise InvalidInput(f"{what}: {value!r} is not an integer") from None
    if spec.type == "number":
        if isinstance(value, bool):
            raise InvalidInput(f"{what}: {value!r} is not a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{what}: {value!r} is not a number") from None
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise InvalidInput(f"{what}: {value!r} is not true or false")
    if spec.type == "choice":
        for choice in spec.choices or []:
            if str(choice) == str(value):
                return choice
        listed = ", ".join(str(c) for c in spec.choices or [])
        raise InvalidInput(f"{what}: {value!r} is not one of {listed}")
    if spec.type == "file":
        return str(input_path(str(value)))
    return value


# --------------------------------------------------------------------------- subprocess


def _answer(code_dir: str, module_name: str) -> dict[str, Any]:
    import importlib
    import inspect

    sys.path.insert(0, code_dir)
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:
        raise _ImportFailed(f"importing {module_name}.py failed: {_line(exc)}") from exc
    get_params = getattr(module, "get_params", None)
    if not callable(get_params):
        return {"declared": False, "train": None, "run": None}
    try:
        takes_run = bool(inspect.signature(get_params).parameters)
    except (TypeError, ValueError):
        takes_run = True
    answers = {}
    for phase, run in (("train", False), ("run", True)):
        answers[phase] = get_params(run) if takes_run else get_params()
    return {"declared": True, **answers}


class _ImportFailed(Exception):
    pass


def _line(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0][:300]}" if first else type(exc).__name__


def _main(argv: list[str]) -> int:
    code_dir, module_name, out, *rest = argv
    memory_mb = int(rest[0]) if rest else 0
    if memory_mb:  # the pipeline jobs' limit: get_params is the same uploaded code
        from keel.jobs.worker import limit_memory

        limit_memory(memory_mb)
    try:
        answer = _answer(code_dir, module_name)
    except _ImportFailed as exc:
        answer = {"error": str(exc)}
    except BaseException as exc:  # user code: whatever it raises is the answer
        answer = {"declared": True, "error": f"get_params() failed: {_line(exc)}"}
    text = json.dumps(answer, default=str)
    Path(out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
