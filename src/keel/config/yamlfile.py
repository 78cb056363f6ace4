"""Reading keel's YAML files: ``!include``, ``${ENV}`` substitution, ``*_var`` secrets.

A file is composed into YAML nodes and walked here rather than constructed by PyYAML, so
that every key keeps the file and line it was written on (errors name both) and so that two
trees come out of one walk: the resolved values keel uses, and a snapshot that keeps
``${VAR}`` templates and ``*_var`` keys as written. Only the snapshot is ever stored or
shown, so a secret read from the environment never leaves the process.

Whatever the file holds, reading it ends in the values or in one :class:`ConfigError` line
naming the file (and the line and key where there is one): malformed YAML, tags PyYAML's
safe constructor cannot build (``!!int abc``, ``!!python/object``), bad merge keys, aliases
that contain themselves, nesting deeper than :data:`MAX_DEPTH`, and aliases that expand to
more than :data:`MAX_VALUES` values (the "billion laughs") are all refused that way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.errors import ConfigError

Loc = tuple[str | int, ...]

INCLUDE_TAG = "!include"
SECRET_SUFFIX = "_var"
MAX_DEPTH = 100  # mappings and lists inside each other, includes counted
MAX_VALUES = 100_000  # values in a file once its aliases are expanded
# ${NAME} or ${NAME:-default}; $${...} is a literal "${...}".
_ENV_PATTERN = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Origin:
    """Where a key or item was written."""

    file: Path
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{shown(self.file)} line {self.line}"


@dataclass
class Document:
    """A loaded config file: resolved values, the secret-free snapshot, and key origins."""

    path: Path
    value: Any
    snapshot: Any
    origins: dict[Loc, Origin] = field(default_factory=dict)
    # Values read through *_var keys; kept only to scrub them from any message.
    secrets: list[str] = field(default_factory=list)

    def where(self, loc: Loc) -> str:
        """The file and line of ``loc`` (or of its nearest written parent)."""
        for end in range(len(loc), 0, -1):
            origin = self.origins.get(loc[:end])
            if origin is not None:
                return str(origin)
        return shown(self.path)

    def scrub(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***``."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text


def dotted(loc: Loc) -> str:
    """``("datasources", "train", "path")`` → ``datasources.train.path``; items as ``[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{shown(part)}" if out else shown(part)
    return out


def shown(text: object) -> str:
    """``text`` as a message shows it: as it is when printable, else its repr (a key or a
    path holding a newline or a control character must not break the one-line error)."""
    value = str(text)
    return value if value.isprintable() else repr(value)


def load_document(path: Path, env: Mapping[str, str], text: str | None = None) -> Document:
    """Read ``path`` (or ``text`` as if it were ``path``) with its includes, from ``env``."""
    doc = Document(path=path, value=None, snapshot=None)
    walker = _Walker(doc, env, {path.resolve(): text} if text is not None else {})
    doc.value, doc.snapshot = walker.load_file(path.resolve(), (), ())
    if doc.value is None:
        doc.value, doc.snapshot = {}, {}
    return doc


class _Walker:
    def __init__(self, doc: Document, env: Mapping[str, str], texts: dict[Path, str]) -> None:
        import yaml

        self.texts = texts
        self.doc = doc
        self.env = env
        self.yaml = yaml
        self.values = 0  # walked so far, aliases expanded
        self.open_nodes: set[int] = set()  # ids of the nodes being walked (alias cycles)
        # A constructor for scalars only: it turns "3", "true", "null" into Python values
        # with YAML 1.1's safe rules, exactly as yaml.safe_load would.
        self.constructor = yaml.SafeLoader("")

    def load_file(self, path: Path, loc: Loc, chain: tuple[Path, ...]) -> tuple[Any, Any]:
        yaml = self.yaml
        if path in chain:
            cycle = " -> ".join(shown(p.name) for p in (*chain, path))
            raise ConfigError(f"{shown(chain[-1])}: !include cycle: {cycle}")
        where = f"{self.doc.where(loc)}: {dotted(loc)}: " if chain else ""
        try:
            text = self.texts.get(path)
            if text is None:
                text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{where}config file {shown(path)} not found") from None
        except IsADirectoryError:
            raise ConfigError(
                f"{where}config file {shown(path)} is a folder: name a YAML file in it"
            ) from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{where}cannot read config file {shown(path)}: not UTF-8 text (byte "
                f"0x{exc.object[exc.start]:02x} at offset {exc.start}): save it as UTF-8"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{where}cannot read config file {shown(path)}: {exc.strerror or exc}"
            ) from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{shown(path)}{line}: not valid YAML: {problem}") from None
        except RecursionError:  # PyYAML composes nested nodes recursively
            raise ConfigError(
                f"{shown(path)}: not valid YAML: nested too deeply "
                f"(keel reads up to {MAX_DEPTH} levels)"
            ) from None
        if node is None:
            return None, None
        return self.walk(node, path, loc, (*chain, path))

    def fail(self, path: Path, node: Any, loc: Loc, message: str) -> ConfigError:
        where = f"{shown(path)} line {node.start_mark.line + 1}"
        key = f"{dotted(loc)}: " if loc else ""
        return ConfigError(f"{where}: {key}{message}")

    def construct(self, node: Any, path: Path, loc: Loc) -> Any:
        """A scalar (or a key) as yaml.safe_load builds it, or a located ConfigError."""
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml_errors(self.yaml) as exc:
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            if "could not determine a constructor" in str(exc):
                problem = f"unknown tag {tag} (keel reads plain YAML values and !include)"
            else:
                problem = f"not a valid {tag} value"
            raise self.fail(path, node, loc, problem) from None

    def walk(self, node: Any, path: Path, loc: Loc, chain: tuple[Path, ...]) -> tuple[Any, Any]:
        # An alias is the node it names: walked once per use, so count (and bound) the
        # values it expands to, and refuse one that contains itself.
        if id(node) in self.open_nodes:
            raise self.fail(path, node, loc, "an alias (*name) that contains itself")
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.fail(
                path, node, loc, f"more than {MAX_VALUES} values once aliases are expanded"
            )
        if len(loc) > MAX_DEPTH:
            raise self.fail(path, node, loc, f"nested more than {MAX_DEPTH} levels deep")
        self.open_nodes.add(id(node))
        try:
            return self._walk(node, path, loc, chain)
        finally:
            self.open_nodes.discard(id(node))

    def _walk(self, node: Any, path: Path, loc: Loc, chain: tuple[Path, ...]) -> tuple[Any, Any]:
        yaml = self.yaml
        if node.tag == INCLUDE_TAG:
            if not isinstance(node, yaml.ScalarNode) or not node.value:
                raise self.fail(path, node, loc, "!include takes a file name, e.g. !include db.yml")
            return self.load_file((path.parent / node.value).resolve(), loc, chain)
        if node.tag.startswith("!"):
            raise self.fail(path, node, loc, f"unknown tag {node.tag} (keel knows !include)")
        if isinstance(node, yaml.MappingNode):
            return self.walk_mapping(node, path, loc, chain)
        if isinstance(node, yaml.SequenceNode):
            values, snapshots = [], []
            for i, item in enumerate(node.value):
                self.doc.origins[(*loc, i)] = Origin(path, item.start_mark.line + 1)
                value, snap = self.walk(item, path, (*loc, i), chain)
                values.append(value)
                snapshots.append(snap)
            return values, snapshots
        value = self.construct(node, path, loc)
        if isinstance(value, str) and "$" in value:
            return self.substitute(value, path, node, loc), value
        return value, value

    def walk_mapping(
        self, node: Any, path: Path, loc: Loc, chain: tuple[Path, ...]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        own: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.key(key_node, path, loc)
            target = _target_key(key)
            if target in own:
                raise self.fail(path, key_node, (*loc, key), "key given twice")
            own.add(target)
        # YAML merge keys (<<: *defaults): merged pairs come first, own keys override them.
        try:
            self.constructor.flatten_mapping(node)
        except yaml_errors(self.yaml) as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise self.fail(path, node, loc, f"bad merge key (<<): {problem}") from None
        values: dict[str, Any] = {}
        snapshot: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path, loc)  # merged keys are checked here
            target = _target_key(key)
            for stale in (target, target + SECRET_SUFFIX):
                values.pop(stale, None)
                snapshot.pop(stale, None)
            self.doc.origins[(*loc, target)] = Origin(path, key_node.start_mark.line + 1)
            if target != key:
                values[target] = self.secret(value_node, path, (*loc, key))
                snapshot[key] = value_node.value
            else:
                values[key], snapshot[key] = self.walk(value_node, path, (*loc, key), chain)
        return values, snapshot

    def key(self, node: Any, path: Path, loc: Loc) -> str:
        if node.tag == INCLUDE_TAG or node.tag.startswith("!"):
            raise self.fail(path, node, loc, f"a key cannot be a {node.tag} value")
        key = self.construct(node, path, loc)
        if not isinstance(key, str):
            raise self.fail(path, node, loc, f"keys must be text, got {key!r}")
        return key

    def secret(self, node: Any, path: Path, loc: Loc) -> str:
        name = node.value if isinstance(node, self.yaml.ScalarNode) else None
        if not name or not isinstance(name, str) or not _is_env_name(name):
            raise self.fail(
                path, node, loc, "expected the name of an environment variable, e.g. DB_PASSWORD"
            )
        if name not in self.env:
            raise self.fail(path, node, loc, f"environment variable {name} is not set")
        value = self.env[name]
        self.doc.secrets.append(value)
        return value

    def substitute(self, text: str, path: Path, node: Any, loc: Loc) -> str:
        def replace(match: re.Match[str]) -> str:
            escaped, name, default = match.groups()
            if escaped:
                return match.group(0)[1:]
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            raise self.fail(
                path,
                node,
                loc,
                f"environment variable {name} is not set (used as ${{{name}}}; "
                f"set it or write ${{{name}:-default}})",
            )

        return _ENV_PATTERN.sub(replace, text)


def yaml_errors(yaml: Any) -> tuple[type[BaseException], ...]:
    """What PyYAML's constructor raises on a value it cannot build (``!!int`` with no
    digits is an IndexError, ``!!timestamp nope`` an AttributeError)."""
    return (
        yaml.YAMLError,
        ValueError,
        TypeError,
        AttributeError,
        LookupError,
        OverflowError,
        RecursionError,
    )


def _target_key(key: str) -> str:
    """The key a value lands under: ``password_var`` fills ``password``."""
    if key.endswith(SECRET_SUFFIX) and len(key) > len(SECRET_SUFFIX):
        return key[: -len(SECRET_SUFFIX)]
    return key


def _is_env_name(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None
