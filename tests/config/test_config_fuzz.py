"""Bad keel.yml files: one clear error each, from the Python API and from the ``keel`` command.

What this file holds:

1. A table of hand-made bad configs (:data:`CASES`): malformed YAML (tabs, an unclosed quote,
   duplicate keys, binary data, several documents, a list or text at the top), wrong types
   in every section, unknown keys, ``!include`` cycles (a→b→a, a→a), an include of a
   missing file or a folder, ``${VAR}`` and ``*_var`` naming an unset variable, tags PyYAML
   cannot build, an alias that contains itself, aliases expanding to millions of values,
   nesting thousands deep, and ``-c`` naming a folder or nothing. For each,
   ``keel.config.load_config`` raises :class:`ConfigError` (never a raw yaml, pydantic,
   KeyError or RecursionError) with one line naming the file and, where there is one, the
   line and key; and ``keel -c FILE data list`` (in process, through ``keel.cli.main`` under
   click's ``CliRunner`` isolation) exits non-zero with exactly one ``error:`` line on
   stderr saying the same, and no traceback. A few run the real ``.venv/bin/keel``.
2. Hypothesis garbage: random YAML-ish text, and random nested documents (sections of
   keel.yml filled with random mappings, lists and scalars) dumped to YAML. Each is either
   a config, or one ``ConfigError`` line from the API and one ``error:`` line from the CLI.

Cost: ``KEEL_FUZZ_EXAMPLES`` (default 150) examples per hypothesis test, derandomized;
``KEEL_FUZZ_EXAMPLES=3000 .venv/bin/pytest tests/config/test_config_fuzz.py`` hunts longer.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from keel.cli import main
from keel.config import load_config
from keel.errors import ConfigError

EXAMPLES = int(os.environ.get("KEEL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MISSING = "KEEL_FUZZ_UNSET_VAR"  # never set: the tests delete it
#: what stderr may hold besides the error line: `keel data list` says which config it read
INFO_LINE = re.compile(
    r"^config .+ \((given with -c|from KEEL_CONFIG|found in the working folder)\)$"
)


@dataclass
class Case:
    """A bad config: its files (the first is the one given to keel), what the error says."""

    id: str
    files: dict[str, str | bytes]
    says: str  # a regex the one error line must match
    where: str = ""  # the line / key the error must name, when the problem has one
    api: bool = True  # False: only `keel data list` sees it (data sources are checked there)
    env: dict[str, str] = field(default_factory=dict)


LAUGHS = "".join(
    f"{n}: &{n} [{', '.join([f'*{p}' if p else 'x'] * 10)}]\n"
    for n, p in zip("abcdefgh", ["", *"abcdefg"], strict=True)
)

CASES = [
    # --- malformed YAML
    Case("tab", {"keel.yml": "project: p\n\tstore: x\n"}, "not valid YAML: .*'\\\\t'", "line 2"),
    Case("unclosed-quote", {"keel.yml": 'project: "p\n'}, "not valid YAML: found unexpected end"),
    Case("duplicate-key", {"keel.yml": "project: a\nproject: b\n"}, "key given twice", "line 2: project"),
    Case(
        "duplicate-via-var",
        {"keel.yml": "dbms:\n  w:\n    connection_string: x\n    password: a\n    password_var: B\n"},
        "key given twice",
        "line 5: dbms.w.password_var",
    ),
    Case("binary", {"keel.yml": bytes(range(256)) * 4}, "not UTF-8 text"),
    Case("latin-1", {"keel.yml": "project: café\n".encode("latin-1")}, "not UTF-8 text .*save it as UTF-8"),
    Case("nul-byte", {"keel.yml": b"project: a\x00b\n"}, "not valid YAML: unacceptable character"),
    Case("top-level-list", {"keel.yml": "- a\n- b\n"}, "expected a mapping of sections .* got list"),
    Case("top-level-text", {"keel.yml": "just words\n"}, "expected a mapping of sections .* got str"),
    Case("two-documents", {"keel.yml": "project: a\n---\nproject: b\n"}, "another document", "line 2"),
    Case("mapping-in-value", {"keel.yml": "project: a: b\n"}, "mapping values are not allowed", "line 1"),
    Case("text-key", {"keel.yml": "1: a\n"}, "keys must be text, got 1", "line 1"),
    Case("list-key", {"keel.yml": "? [a]\n: 1\n"}, "keys must be text", "line 1"),
    # --- tags, aliases, merge keys, depth
    Case("python-tag", {"keel.yml": "project: !!python/object:os.system x\n"}, "unknown tag !!python/object", "line 1: project"),
    Case("bad-int-tag", {"keel.yml": "server:\n  port: !!int abc\n"}, "not a valid !!int value", "line 2: server.port"),
    Case("bad-timestamp", {"keel.yml": "project: !!timestamp nope\n"}, "not a valid !!timestamp value", "project"),
    Case("local-tag", {"keel.yml": "project: !secret x\n"}, "unknown tag !secret", "line 1: project"),
    Case("tag-as-key", {"keel.yml": "!include x.yml: 1\n"}, "a key cannot be a !include value", "line 1"),
    Case("include-list", {"keel.yml": "store: !include [a.yml]\n"}, "!include takes a file name", "line 1: store"),
    Case("alias-cycle", {"keel.yml": "a: &x [*x]\n"}, "alias .* contains itself", "line 1: a"),
    Case("alias-cycle-map", {"keel.yml": "store: &s {url: *s}\n"}, "contains itself", "store.url"),
    Case("billion-laughs", {"keel.yml": LAUGHS}, "more than 100000 values once aliases are expanded"),
    Case("deep-lists", {"keel.yml": "a: " + "[" * 5000 + "]" * 5000 + "\n"}, "nested too deeply"),
    Case("deep-mappings", {"keel.yml": "a:" + "".join(f"\n{' ' * i}b{i}:" for i in range(1, 150)) + " 1\n"}, "nested more than 100 levels deep"),
    Case("bad-merge", {"keel.yml": "project: p\n<<: 3\n"}, "bad merge key \\(<<\\)", "line"),
    Case("merged-text-key", {"keel.yml": "<<: {1: a}\n"}, "keys must be text, got 1"),
    # --- wrong types, section by section
    Case("project-number", {"keel.yml": "project: 3\n"}, "project: expected a valid string", "line 1"),
    Case("project-bad-name", {"keel.yml": "project: 'bad name!'\n"}, "project: expected a name of letters"),
    Case("store-list", {"keel.yml": "store: [1, 2]\n"}, "store: expected a valid dictionary$", "line 1"),
    Case("store-options", {"keel.yml": "store:\n  storage_options: 3\n"}, "expected a valid dictionary", "line 2: store.storage_options"),
    Case("plugins-number", {"keel.yml": "plugins: 3\n"}, "plugins: expected a valid list"),
    Case("dbms-list", {"keel.yml": "dbms: [a]\n"}, "dbms: expected a valid dictionary"),
    Case("dbms-empty", {"keel.yml": "dbms:\n  w: {}\n"}, "dbms.w: connection_string is required", "line 2"),
    # any name is a type (a plugin may serve dbms.<type>, checked where a source uses it)
    Case("dbms-type", {"keel.yml": "dbms:\n  w: {type: 'my sql', connection_string: x}\n"}, "dbms.w.type: expected text matching"),
    Case("dbms-port", {"keel.yml": "dbms:\n  w: {type: oracle, host: h, service_name: s, port: x}\n"}, "dbms.w.port: expected a valid integer"),
    Case("datasources-number", {"keel.yml": "datasources: 3\n"}, "datasources: expected a valid dictionary"),
    Case("datasource-number", {"keel.yml": "datasources:\n  train: 3\n"}, "datasources.train: expected a valid dictionary", "line 2"),
    Case("datasource-type", {"keel.yml": "datasources:\n  train: {type: nope}\n"}, "unknown data source type 'nope'", "line 2: datasources.train.type", api=False),
    Case("datasource-no-path", {"keel.yml": "datasources:\n  train: {type: csv}\n"}, "datasources.train.path: required, but missing", api=False),
    Case("datasink-number", {"keel.yml": "datasinks:\n  out: [1]\n"}, "datasinks.out: expected a valid dictionary"),
    Case("model-list", {"keel.yml": "model: [1]\n"}, "model: expected a valid dictionary$"),
    Case("model-params", {"keel.yml": "model:\n  params: 3\n"}, "model.params: expected a valid dictionary"),
    Case("api-name", {"keel.yml": "api:\n  name: 'no spaces'\n"}, "api.name: expected a name"),
    Case("jobs-values", {"keel.yml": "jobs:\n  max_parallel: 0\n"}, "jobs.max_parallel: expected greater than or equal to 1"),
    Case("jobs-executor", {"keel.yml": "jobs:\n  executor: a b\n"}, "jobs.executor: expected a name"),
    Case("server-port", {"keel.yml": "server:\n  port: 70000\n"}, "server.port: expected less than or equal to 65535", "line 2"),
    Case("server-port-text", {"keel.yml": "server:\n  port: abc\n"}, "server.port: expected a valid integer"),
    Case("server-bool", {"keel.yml": "server:\n  anonymous_read: maybe\n"}, "server.anonymous_read: expected a valid boolean"),
    # --- unknown keys
    Case("unknown-top", {"keel.yml": "colour: red\n"}, "unknown key colour \\(known keys: api, ", "line 1: colour"),
    Case("unknown-nested", {"keel.yml": "server:\n  prot: 1\n"}, "unknown key prot \\(did you mean port\\?", "line 2: server.prot"),
    Case("unknown-store", {"keel.yml": "store:\n  urll: x\n"}, "unknown key urll \\(did you mean url\\?", "store.urll"),
    # --- includes
    Case("include-cycle", {"a.yml": "store: !include b.yml\n", "b.yml": "x: !include a.yml\n"}, "!include cycle: a.yml -> b.yml -> a.yml"),
    Case("include-self", {"a.yml": "store: !include a.yml\n"}, "!include cycle: a.yml -> a.yml"),
    Case("include-missing", {"keel.yml": "store: !include nope.yml\n"}, "config file .*nope.yml not found", "line 1: store"),
    Case("include-folder", {"keel.yml": "store: !include sub\n", "sub/x.yml": "url: x\n"}, "config file .*sub is a folder", "line 1: store"),
    Case("include-bad-yaml", {"keel.yml": "store: !include db.yml\n", "db.yml": "url: [\n"}, "db.yml line 2: not valid YAML"),
    # --- the environment
    Case("env-unset", {"keel.yml": f"project: ${{{MISSING}}}\n"}, f"environment variable {MISSING} is not set .*:-default", "line 1: project"),
    Case("var-unset", {"keel.yml": f"dbms:\n  w:\n    connection_string: x\n    password_var: {MISSING}\n"}, f"environment variable {MISSING} is not set", "line 4: dbms.w.password_var"),
    Case("var-not-a-name", {"keel.yml": "dbms:\n  w:\n    connection_string: x\n    password_var: [1]\n"}, "expected the name of an environment variable", "dbms.w.password_var"),
    Case("secret-not-echoed", {"keel.yml": "dbms:\n  w:\n    password_var: KEEL_FUZZ_SECRET\n"}, "connection_string is required", env={"KEEL_FUZZ_SECRET": "hunter2"}),
]  # fmt: skip


def _write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root / next(iter(files))


def run_cli(*args: str) -> tuple[int, str, str]:
    """``keel ARGS`` in this process: (exit code, stdout, stderr). ``keel.cli.main`` is the
    console script's entry point; anything it lets escape is a traceback, and fails here."""
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return code, stdout, stderr


def one_error_line(stderr: str) -> str:
    """The one ``error:`` line of stderr (anything else there is the config it read)."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert all(INFO_LINE.match(line) for line in lines if line not in errors), stderr
    return errors[0]


def _says(message: str, case: Case, file: Path) -> None:
    assert "\n" not in message
    assert re.search(case.says, message), message
    assert file.name in message or str(file.parent) in message, message  # names the file
    if case.where:
        assert case.where in message, message
    assert "hunter2" not in message  # a secret read through *_var is never shown


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_config_is_one_clear_error(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MISSING, raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    file = _write(tmp_path, case.files)
    if case.api:
        with pytest.raises(ConfigError) as raised:
            load_config(file)
        _says(str(raised.value), case, file)
    else:
        load_config(file)  # the sections are fine; keel.data checks the data sources
    code, stdout, stderr = run_cli("-c", str(file), "data", "list")
    assert code != 0
    assert "Traceback" not in stdout
    line = one_error_line(stderr)
    _says(line.removeprefix("error: "), case, file)


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    """Not an error: an empty keel.yml (or one of comments only) means "all defaults"."""
    for text in ("", "# nothing yet\n", "---\n"):
        file = _write(tmp_path, {"keel.yml": text})
        assert load_config(file).project is None
        code, _, stderr = run_cli("-c", str(file), "data", "list")
        assert code == 0, stderr


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("-c", "is a folder: name the YAML file"),
        ("KEEL_CONFIG", "is a folder"),
        ("missing", "not found"),
    ],
)
def test_a_config_path_that_is_no_file(
    how: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    if how == "KEEL_CONFIG":
        monkeypatch.setenv("KEEL_CONFIG", str(folder))
        args: tuple[str, ...] = ("data", "list")
        with pytest.raises(ConfigError, match=says):
            load_config()
    else:
        target = folder if how == "-c" else tmp_path / "gone.yml"
        args = ("-c", str(target), "data", "list")
        with pytest.raises(ConfigError, match=says):
            load_config(target)
    code, _, stderr = run_cli(*args)
    assert code != 0
    assert says in one_error_line(stderr)


REAL = ["tab", "include-cycle", "env-unset", "alias-cycle", "python-tag", "billion-laughs"]


@pytest.mark.parametrize("case", [c for c in CASES if c.id in REAL], ids=REAL)
def test_the_real_keel_command_prints_one_line(case: Case, tmp_path: Path) -> None:
    """The console script itself (not just main() in process): same one line, no traceback."""
    file = _write(tmp_path, case.files)
    keel = Path(sys.executable).with_name("keel")
    env = {k: v for k, v in os.environ.items() if k != MISSING and not k.startswith("KEEL_")}
    env["KEEL_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [str(keel), "-c", str(file), "data", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    _says(one_error_line(done.stderr).removeprefix("error: "), case, file)


# --- hypothesis: garbage in, one line out ------------------------------------------------------


def _either_config_or_one_line(tmp_path: Path, content: str | bytes) -> None:
    file = _write(tmp_path, {"keel.yml": content})
    try:
        load_config(file)
        outcome = "a config"
    except ConfigError as exc:
        assert "\n" not in str(exc)
        assert str(file.parent) in str(exc) or file.name in str(exc), str(exc)
        outcome = "ConfigError"
    code, stdout, stderr = run_cli("-c", str(file), "data", "list")
    assert "Traceback" not in stdout + stderr
    if code != 0:
        line = one_error_line(stderr)
        assert file.name in line, line
    event(f"{outcome}, keel data list exit {code}")  # --hypothesis-show-statistics
    # a config may be valid and still name a data source keel.data refuses: that is code 1


YAMLISH = [
    *":-[]{}#&*!|>'\"%@`,?<=~ \n\t\\abcxyz019.$_",
    *["${", "!include ", "<<: ", "_var: ", "!!int ", "!!binary ", "\u00e9", "\x85", "\ufeff"],
]


@FUZZ
@example(text="a: &x [*x]")
@example(text="a: !!int ")  # IndexError inside PyYAML's int constructor
@example(text="<<: [*a]")
@example(text="!!python/name:os.system : 1")
@example(text="? !!binary AAAA\n: 1")
@given(text=st.lists(st.sampled_from(YAMLISH), max_size=40).map("".join))
def test_random_yaml_text_is_a_config_or_one_line(
    text: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assume("plugins" not in text)  # naming a module would import it
    _either_config_or_one_line(tmp_path_factory.mktemp("text"), text)


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_are_a_config_or_one_line(
    data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assume(b"plugins" not in data)
    _either_config_or_one_line(tmp_path_factory.mktemp("bytes"), data)


SECTIONS = [
    "project",
    "store",
    "dbms",
    "datasources",
    "datasinks",
    "model",
    "api",
    "jobs",
    "server",
]
KEYS = [
    "url", "artifacts", "storage_options", "type", "connection_string", "options", "host",
    "port", "name", "version", "module", "params", "executor", "timeout_s", "max_parallel",
    "path", "password_var", "anonymous_read", "train", "w", "x_var", "", "a.b", "$gt", "<<",
]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["csv", "sql", "oracle", "local", "${HOME}", f"${{{MISSING}}}"]),
)  # fmt: skip
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=12,
)
configs = st.dictionaries(
    st.one_of(st.sampled_from(SECTIONS), st.text(max_size=6)), documents, max_size=5
).filter(lambda d: "plugins" not in d)


#: a valid keel.yml; near_configs swap one of its values for a random document
VALID: dict[str, Any] = {
    "project": "p",
    "store": {"url": "store", "artifacts": "blobs", "storage_options": {}},
    "dbms": {"w": {"connection_string": "sqlite://", "options": {}}},
    "datasources": {"train": {"type": "csv", "path": "train.csv"}},
    "datasinks": {"out": {"type": "csv", "path": "out.csv"}},
    "model": {"name": "m", "version": "1", "params": {"a": 1}},
    "api": {"name": "a"},
    "jobs": {"executor": "local", "max_parallel": 2},
    "server": {"port": 8080, "anonymous_read": False},
}
PATHS = [(k,) for k in VALID] + [
    (section, key) for section, body in VALID.items() if isinstance(body, dict) for key in body
]


def _swap(pair: tuple[tuple[str, ...], Any]) -> dict[str, Any]:
    path, value = pair
    doc = copy.deepcopy(VALID)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


near_configs = st.tuples(st.sampled_from(PATHS), documents).map(_swap)


def test_the_valid_config_is_valid(tmp_path: Path) -> None:
    """Guard: near_configs start from a config keel accepts, API and CLI."""
    file = _write(tmp_path, {"keel.yml": yaml.safe_dump(VALID)})
    assert load_config(file).project == "p"
    code, _, stderr = run_cli("-c", str(file), "data", "list")
    assert code == 0, stderr


@FUZZ
@example(doc={"server": {"port": "x", "prot": 1}, "store": [1]})
@example(doc={"\r": 1})  # a key holding a line break broke the one-line error
@example(doc={"datasources": {"train": {"type": "csv", "path": None}}})
@given(doc=st.one_of(near_configs, near_configs, configs, documents))
def test_random_documents_are_a_config_or_one_line(
    doc: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MISSING, raising=False)
    text = yaml.safe_dump(doc, allow_unicode=True)
    _either_config_or_one_line(tmp_path_factory.mktemp("doc"), text)
